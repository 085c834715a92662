// The ceiling: the module's pages generated and serialized by node alone.
const app = require(process.argv[2]);
(async () => {
  await app.init({ total: Number(process.argv[3]) });
  let sync = null, n = 0;
  for (;;) {
    const page = await app.getUpdates(sync);
    if (page.entries.length === 0) break;
    process.stdout.write(JSON.stringify({ jsonrpc: '2.0', id: 1, result: page }) + '\n');
    n += page.entries.length;
    sync = page.nextSync;
  }
  process.stderr.write('records=' + n + '\n');
})();
