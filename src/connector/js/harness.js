// ferry's Node harness for the `js` connector: it loads a SyncPenguin-style
// data source module and speaks ferry's connector protocol (docs/protocol.md)
// for it on stdin/stdout. The module reaches its API through
// `this.httpClient` (or global `fetch`); both send their requests back to
// ferry as `http` requests, so ferry's engine (rate limits, retries,
// redaction, cassettes) sends them. stdout carries only the protocol:
// console output goes to stderr, which ferry shows as the module's log.
//
// Written for Node 18 and later; the syntax stays plain enough that an older
// Node still starts it and ferry can say which version it needs.
'use strict';

const path = require('path');
const readline = require('readline');
const util = require('util');
const { pathToFileURL } = require('url');

const modulePath = process.argv[1];
const moduleFile = path.basename(modulePath);
const moduleDir = path.dirname(modulePath);
const PROTOCOL_VERSION = 1;
const METHODS = ['check', 'get', 'insert', 'patch', 'delete', 'getUpdates', 'upsertMany', 'exportProfile', 'exportProfiles'];

// stdout is the protocol's: every console method writes to stderr.
for (const name of ['log', 'info', 'debug', 'warn', 'error', 'trace']) {
  console[name] = function () {
    process.stderr.write(util.format.apply(null, arguments) + '\n');
  };
}

function send(message) {
  message.jsonrpc = '2.0';
  let line;
  try {
    line = JSON.stringify(message);
  } catch (e) {
    // A circular object or a BigInt in a result: say so for that call.
    line = JSON.stringify({ jsonrpc: '2.0', id: message.id, error: { code: -32000, message: 'the answer cannot be sent as JSON (return plain objects, arrays, strings and numbers): ' + e.message, data: { kind: 'failed' } } });
  }
  process.stdout.write(line + '\n');
}

// Requests this side sent (http), waiting for ferry's answer.
let nextId = 1;
const waiting = new Map();

function ask(method, params) {
  const id = 'h' + nextId++;
  return new Promise(function (resolve, reject) {
    waiting.set(id, { resolve: resolve, reject: reject });
    send({ id: id, method: method, params: params });
  });
}

function parseBody(text) {
  if (text === undefined || text === null || text === '') return null;
  try {
    return JSON.parse(text);
  } catch (e) {
    return text;
  }
}

function vendorMessage(body) {
  if (body && typeof body === 'object') {
    if (typeof body.message === 'string') return body.message;
    if (typeof body.error === 'string') return body.error;
    if (body.error && typeof body.error.message === 'string') return body.error.message;
  }
  if (typeof body === 'string' && body.length > 0) return body.slice(0, 300);
  return null;
}

// An error for a non-2xx answer: it carries the status and the body.
function statusError(method, url, status, body) {
  const said = vendorMessage(body);
  const error = new Error(method + ' ' + url + ' answered ' + status + (said ? ': ' + said : ''));
  error.status = status;
  error.body = body;
  return error;
}

// SyncPenguin's httpClient: headers set once, paths resolved against the
// account's baseUrl, answers resolved to the parsed JSON body.
function HttpClient(baseUrl) {
  this.baseUrl = baseUrl || '';
  this.headers = {};
}

HttpClient.prototype.setHeader = function (name, value) {
  this.headers[name] = String(value);
};

HttpClient.prototype.removeHeader = function (name) {
  delete this.headers[name];
};

HttpClient.prototype.url = function (p) {
  if (/^https?:\/\//.test(p)) return p;
  if (!this.baseUrl) {
    throw Object.assign(new Error('httpClient was given the path ' + p + ' but account.json has no baseUrl'), { kind: 'config' });
  }
  return this.baseUrl.replace(/\/+$/, '') + (p.charAt(0) === '/' ? p : '/' + p);
};

HttpClient.prototype.request = function (method, p, body, options) {
  const url = this.url(p);
  const headers = Object.assign({}, this.headers, (options && options.headers) || {});
  const params = { method: method, url: url, headers: headers };
  // A string goes as it is (XML, text) when the module says what it is;
  // without a Content-Type, a string that is JSON goes as JSON (as axios
  // sends a JSON string). Anything else goes as JSON.
  const typed = Object.keys(headers).some(function (k) { return k.toLowerCase() === 'content-type'; });
  if (typeof body === 'string' && !typed) {
    try { params.body = JSON.parse(body); } catch (e) { params.bodyText = body; }
  } else if (typeof body === 'string') {
    params.bodyText = body;
  } else if (body !== undefined) {
    params.body = body;
  }
  return ask('http', params).then(function (answer) {
    const parsed = parseBody(answer.body);
    if (answer.status < 200 || answer.status > 299) {
      throw statusError(method, url, answer.status, parsed);
    }
    return parsed;
  });
};

HttpClient.prototype.get = function (p, options) { return this.request('GET', p, undefined, options); };
HttpClient.prototype.delete = function (p, options) { return this.request('DELETE', p, undefined, options); };
HttpClient.prototype.post = function (p, body, options) { return this.request('POST', p, body, options); };
HttpClient.prototype.put = function (p, body, options) { return this.request('PUT', p, body, options); };
HttpClient.prototype.patch = function (p, body, options) { return this.request('PATCH', p, body, options); };

// Global fetch through ferry's engine, answering a standard Response.
async function ferryFetch(input, init) {
  init = init || {};
  const url = typeof input === 'string' ? input : (input && input.url) || String(input);
  const method = (init.method || (input && input.method) || 'GET').toUpperCase();
  const headers = {};
  new Headers(init.headers || (input && input.headers) || {}).forEach(function (v, k) { headers[k] = v; });
  const params = { method: method, url: url, headers: headers };
  if (init.body !== undefined && init.body !== null) {
    if (init.body instanceof URLSearchParams) {
      params.form = Object.fromEntries(init.body);
    } else if (typeof init.body === 'string') {
      params.bodyText = init.body;
    } else {
      // A stream, a Blob, a Buffer: the protocol carries text.
      throw Object.assign(new Error('fetch(' + url + '): ferry sends string or URLSearchParams bodies; this one is neither'), { kind: 'config' });
    }
  }
  const answer = await ask('http', params);
  const noBody = answer.status === 204 || answer.status === 304 || method === 'HEAD';
  return new Response(noBody ? null : answer.body, { status: answer.status, headers: answer.headers });
}

// The module's object: its methods are called with `this` bound to it, as
// SyncPenguin does, so `this.httpClient` is there.
let app = null;
let client = null;

async function load() {
  let loaded;
  if (/\.mjs$/.test(modulePath)) {
    loaded = await import(pathToFileURL(modulePath).href);
  } else {
    try {
      loaded = require(modulePath);
    } catch (e) {
      if (e && e.code === 'ERR_REQUIRE_ESM') {
        loaded = await import(pathToFileURL(modulePath).href);
      } else {
        throw e;
      }
    }
  }
  // An ES module's namespace is frozen: its methods (`export default {...}`
  // or named exports) go on a plain object the harness can give httpClient.
  const onlyDefault = Object.prototype.toString.call(loaded) === '[object Module]' &&
    Object.keys(loaded).length === 1 && loaded.default && typeof loaded.default === 'object';
  if (onlyDefault) {
    // `export default new Source()`: the object itself, its class's methods with it.
    loaded = loaded.default;
  } else if (Object.prototype.toString.call(loaded) === '[object Module]') {
    const plain = {};
    if (loaded.default && typeof loaded.default === 'object') Object.assign(plain, loaded.default);
    Object.keys(loaded).forEach(function (k) { if (k !== 'default') plain[k] = loaded[k]; });
    loaded = plain;
  }
  if (!loaded || typeof loaded !== 'object') {
    throw Object.assign(new Error(moduleFile + ' exports no object of methods (module.exports = { async get(id) {...}, ... })'), { kind: 'config' });
  }
  return loaded;
}

// Where in the module an error was thrown: "dataSourceApp.js:12".
function location(error) {
  const stack = (error && typeof error.stack === 'string') ? error.stack : '';
  const lines = stack.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const m = /\(?((?:file:\/\/)?[^()\s]+):(\d+):(\d+)\)?\s*$/.exec(lines[i]);
    if (!m) continue;
    let file = m[1].replace(/^file:\/\//, '');
    if (file.indexOf(moduleDir) !== 0 || file.indexOf('node_modules') !== -1) continue;
    return path.relative(moduleDir, file) + ':' + m[2];
  }
  // A syntax error names the file on the stack's first line.
  const first = /^(\/[^:\n]+):(\d+)/.exec(stack);
  if (first && first[1].indexOf(moduleDir) === 0) return path.relative(moduleDir, first[1]) + ':' + first[2];
  return undefined;
}

function kindOf(error) {
  if (error && typeof error.kind === 'string') return error.kind;
  // Grouparoo's export errors: "info" is a skip, never retried.
  if (error && error.errorLevel === 'info') return 'skipped';
  const status = error && error.status;
  if (status === 401 || status === 403) return 'auth';
  if (status === 404 || status === 410) return 'not_found';
  if (status === 429) return 'rate_limited';
  if (status === 400 || status === 409 || status === 422) return 'invalid_record';
  if (typeof status === 'number') return 'transient';
  return 'failed';
}

function errorOf(error) {
  const message = (error && error.message) || String(error);
  const data = { kind: kindOf(error) };
  const at = location(error);
  if (at) data.location = at;
  if (error && error.status !== undefined) data.status = error.status;
  if (error && error.body !== undefined) data.body = error.body;
  return { code: -32000, message: message, data: data };
}

async function initialize(params) {
  const major = Number(process.versions.node.split('.')[0]);
  if (major < 18) return { protocolVersion: PROTOCOL_VERSION, node: process.versions.node, capabilities: [] };
  globalThis.fetch = ferryFetch;
  try {
    app = await load();
  } catch (e) {
    const error = errorOf(e);
    error.data.kind = 'config';
    error.message = 'could not load ' + moduleFile + ': ' + error.message;
    throw { rpc: error };
  }
  const account = params.account || {};
  client = new HttpClient(account.baseUrl);
  app.httpClient = client;
  if (typeof app.init === 'function') {
    await app.init.call(app, account);
  }
  return {
    protocolVersion: PROTOCOL_VERSION,
    node: process.versions.node,
    capabilities: METHODS.filter(function (m) { return typeof app[m] === 'function'; }),
  };
}

async function handle(method, params) {
  params = params || {};
  switch (method) {
    case 'initialize': return initialize(params);
    case 'check': return app.check.call(app);
    case 'get': return app.get.call(app, params.id);
    case 'insert': return app.insert.call(app, params.value);
    case 'patch': return app.patch.call(app, params.id, params.value);
    case 'delete': return app.delete.call(app, params.id);
    case 'getUpdates': return app.getUpdates.call(app, params.lastSync === undefined ? null : params.lastSync);
    case 'upsertMany': return app.upsertMany.call(app, params.values);
    case 'exportProfile': return app.exportProfile.call(app, params.profile);
    case 'exportProfiles': return app.exportProfiles.call(app, params.profiles);
    case 'shutdown': setImmediate(function () { process.exit(0); }); return null;
    default: throw { rpc: { code: -32601, message: 'no method ' + method } };
  }
}

const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
rl.on('line', function (line) {
  if (!line.trim()) return;
  let message;
  try {
    message = JSON.parse(line);
  } catch (e) {
    process.stderr.write('ferry harness: a line that is not JSON on stdin\n');
    return;
  }
  if (message.method === undefined) {
    const w = waiting.get(message.id);
    if (!w) return;
    waiting.delete(message.id);
    if (message.error) {
      const kind = (message.error.data && message.error.data.kind) || 'transient';
      w.reject(Object.assign(new Error(message.error.message), { kind: kind }));
    } else {
      w.resolve(message.result);
    }
    return;
  }
  const id = message.id;
  Promise.resolve()
    .then(function () { return handle(message.method, message.params); })
    .then(function (result) {
      send({ id: id, result: result === undefined ? null : result });
    }, function (e) {
      send({ id: id, error: (e && e.rpc) || errorOf(e) });
    });
});
rl.on('close', function () { process.exit(0); });
