"""ferry's connector protocol for Python, standard library only.

ferry runs a connector program as a child process and talks to it in
JSON-RPC 2.0, one message a line on stdin and stdout (see ferry's
docs/protocol.md). This helper speaks it for you: write a class with the
methods your connector has, and call `run(YourConnector())`.

    init(account)              once, with account.json's values
    check()                    optional: {"success": bool, "message": str}
    get(id)                    the record, or None when there is none
    insert(value)              the stored record, or {"id": ...}
    patch(id, value)           the record, or None
    delete(id)                 None
    get_updates(last_sync)     {"nextSync": str, "entries": [{"id", "type", "value"}]}
    upsert_many(values)        [{"id": ...} or {"error": {"message": ...}}], one per value
    export_profile(profile)    {"success": bool}; profile is {"profileId", "key",
                               "oldProfileProperties", "newProfileProperties",
                               "oldGroups", "newGroups", "toDelete"}
    export_profiles(profiles)  {"success": bool, "errors": [{"profileId", "message",
                               "errorLevel": "info" (skipped) or "error" (retried)}]}

`self.http` sends HTTP requests through ferry (so its rate limits, retries,
redaction, -v logging and --record/--replay apply) and answers the parsed
JSON body; a status outside 2xx raises ConnectorError with .status and .body.
print() goes to stderr, which ferry shows as the connector's log: stdout
carries only the protocol.
"""

import json
import os
import sys
import traceback

PROTOCOL_VERSION = 1
METHODS = {
    "check": "check",
    "get": "get",
    "insert": "insert",
    "patch": "patch",
    "delete": "delete",
    "getUpdates": "get_updates",
    "upsertMany": "upsert_many",
    "exportProfile": "export_profile",
    "exportProfiles": "export_profiles",
}


class ConnectorError(Exception):
    """An error ferry understands. kind: config, auth, not_found,
    rate_limited, transient, invalid_record (the record's fault: import
    rejects it and goes on), skipped (export: not sent, never retried), or
    failed."""

    def __init__(self, message, kind="failed", status=None, body=None):
        super().__init__(message)
        self.kind = kind
        self.status = status
        self.body = body


def _kind_of_status(status):
    if status in (401, 403):
        return "auth"
    if status in (404, 410):
        return "not_found"
    if status == 429:
        return "rate_limited"
    if status in (400, 409, 422):
        return "invalid_record"
    return "transient"


class Http:
    """HTTP through ferry's engine: paths resolve against account.json's baseUrl."""

    def __init__(self, channel, base_url):
        self._channel = channel
        self.base_url = (base_url or "").rstrip("/")
        self.headers = {}

    def set_header(self, name, value):
        self.headers[name] = str(value)

    def remove_header(self, name):
        self.headers.pop(name, None)

    def url(self, path):
        if path.startswith("http://") or path.startswith("https://"):
            return path
        if not self.base_url:
            raise ConnectorError("no baseUrl in account.json for the path " + path, kind="config")
        return self.base_url + (path if path.startswith("/") else "/" + path)

    def request(self, method, path, body=None):
        url = self.url(path)
        params = {"method": method, "url": url, "headers": dict(self.headers)}
        if isinstance(body, str):
            params["bodyText"] = body  # sent as it is (XML, text)
        elif body is not None:
            params["body"] = body
        answer = self._channel.ask("http", params)
        text = answer.get("body") or ""
        try:
            parsed = json.loads(text) if text else None
        except ValueError:
            parsed = text
        status = answer.get("status", 0)
        if not 200 <= status <= 299:
            said = parsed.get("error", {}).get("message") if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict) else None
            said = said or (parsed.get("message") if isinstance(parsed, dict) else None)
            message = "%s %s answered %s%s" % (method, url, status, ": " + said if said else "")
            raise ConnectorError(message, kind=_kind_of_status(status), status=status, body=parsed)
        return parsed

    def get(self, path):
        return self.request("GET", path)

    def post(self, path, body=None):
        return self.request("POST", path, body)

    def put(self, path, body=None):
        return self.request("PUT", path, body)

    def patch(self, path, body=None):
        return self.request("PATCH", path, body)

    def delete(self, path):
        return self.request("DELETE", path)


class _Channel:
    """The protocol's two pipes. ferry asks one thing at a time, so while a
    call is open the only line that can arrive is the answer to our own
    request."""

    def __init__(self):
        self._out = sys.stdout
        self._next = 1

    def send(self, message):
        message["jsonrpc"] = "2.0"
        self._out.write(json.dumps(message) + "\n")
        self._out.flush()

    def ask(self, method, params):
        ident = "py%d" % self._next
        self._next += 1
        self.send({"id": ident, "method": method, "params": params})
        line = sys.stdin.readline()
        if not line:
            sys.exit(0)
        answer = json.loads(line)
        if answer.get("error"):
            error = answer["error"]
            kind = (error.get("data") or {}).get("kind", "transient")
            raise ConnectorError(error.get("message", "ferry refused the request"), kind=kind)
        return answer.get("result") or {}

    def log(self, message, level="info"):
        self.send({"method": "log", "params": {"level": level, "message": message}})


def _location(folder):
    """file:line of the innermost frame in the connector's folder."""
    for frame in reversed(traceback.extract_tb(sys.exc_info()[2])):
        path = os.path.abspath(frame.filename)
        if path.startswith(folder) and not path.endswith("ferry_connector.py"):
            return "%s:%s" % (os.path.relpath(path, folder), frame.lineno)
    return None


def run(connector):
    """Serve ferry's calls with `connector` until ferry closes stdin."""
    # The protocol is UTF-8 whatever the locale says.
    sys.stdin.reconfigure(encoding="utf-8")
    sys.stdout.reconfigure(encoding="utf-8")
    sys.stderr.reconfigure(encoding="utf-8", errors="replace")
    channel = _Channel()
    # stdout is the protocol's: print() goes to stderr.
    sys.stdout = sys.stderr
    folder = os.path.dirname(os.path.abspath(sys.argv[0]))
    for line in sys.stdin:
        if not line.strip():
            continue
        message = json.loads(line)
        ident, method, params = message.get("id"), message.get("method"), message.get("params") or {}
        try:
            if method == "initialize":
                account = params.get("account") or {}
                connector.http = Http(channel, account.get("baseUrl"))
                connector.log = channel.log
                if hasattr(connector, "init"):
                    connector.init(account)
                methods = [m for m, name in METHODS.items() if callable(getattr(connector, name, None))]
                result = {"protocolVersion": PROTOCOL_VERSION, "capabilities": methods}
            elif method == "shutdown":
                channel.send({"id": ident, "result": None})
                return
            elif method in METHODS and callable(getattr(connector, METHODS[method], None)):
                call = getattr(connector, METHODS[method])
                if method == "get" or method == "delete":
                    result = call(params.get("id"))
                elif method == "insert":
                    result = call(params.get("value"))
                elif method == "patch":
                    result = call(params.get("id"), params.get("value"))
                elif method == "getUpdates":
                    result = call(params.get("lastSync"))
                elif method == "upsertMany":
                    result = call(params.get("values") or [])
                elif method == "exportProfile":
                    result = call(params.get("profile"))
                elif method == "exportProfiles":
                    result = call(params.get("profiles") or [])
                else:
                    result = call()
            else:
                channel.send({"id": ident, "error": {"code": -32601, "message": "no method " + str(method)}})
                continue
            channel.send({"id": ident, "result": result})
        except Exception as e:  # every error goes back to ferry, worded
            data = {"kind": getattr(e, "kind", "failed")}
            where = _location(folder)
            if where:
                data["location"] = where
            if getattr(e, "status", None) is not None:
                data["status"] = e.status
                data["body"] = e.body
            message = str(e) if isinstance(e, ConnectorError) else "%s: %s" % (type(e).__name__, e)
            channel.send({"id": ident, "error": {"code": -32000, "message": message, "data": data}})
