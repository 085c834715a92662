// A SyncPenguin-style data source module for the customers of the local
// sample API (`ferry sandbox --port 8787`). ferry runs it as it is:
// `this.httpClient` sends through ferry's HTTP engine, so rate limits,
// retries, redaction, -v logging and --record/--replay work for it.
//
// Try it:  ferry sandbox --port 8787 &   then   ferry get / insert / patch /
// delete / getupdates / check, each reading its input from in.json.

module.exports = {
  // Called once per run with account.json's values, before any action.
  async init(account) {
    if (account.apiToken) {
      this.httpClient.setHeader('Authorization', 'Bearer ' + account.apiToken);
    }
  },

  // Optional: what `ferry check` runs after init.
  async check() {
    await this.httpClient.get('/customers?limit=1');
    return { success: true, message: 'the API answered' };
  },

  // The record with this id; a 404 rejects, and ferry says "not found".
  async get(id) {
    return await this.httpClient.get('/customers/' + encodeURIComponent(id));
  },

  // Create a record; answer its id.
  async insert(value) {
    const created = await this.httpClient.post('/customers', value);
    return { id: created.id };
  },

  // Change some fields of a record.
  async patch(id, value) {
    await this.httpClient.patch('/customers/' + encodeURIComponent(id), value);
  },

  async delete(id) {
    await this.httpClient.delete('/customers/' + encodeURIComponent(id));
  },

  // What changed since lastSync (null the first time): the entries and the
  // token the next call continues from. ferry's import pages through this.
  async getUpdates(lastSync) {
    const since = lastSync || '0';
    const page = await this.httpClient.get(
      '/customers?limit=100&updated_since=' + encodeURIComponent(since)
    );
    const entries = page.data.map((c) =>
      c.deleted ? { id: c.id, type: 'delete' } : { id: c.id, type: 'upsert', value: c }
    );
    return { nextSync: page.next_cursor || page.sync_token, entries };
  },
};
