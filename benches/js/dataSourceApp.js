// The benchmark source (benches/js.sh): pages of 1,000 generated customers.
let total = 0;
const PAGE = 1000;
module.exports = {
  async init(account) { total = Number(account.total); },
  async getUpdates(lastSync) {
    const from = Number(lastSync || 0);
    const entries = [];
    for (let i = from; i < Math.min(from + PAGE, total); i++) {
      const id = 'cus_' + String(i).padStart(8, '0');
      entries.push({ id, type: 'upsert', value: { id, email: 'user' + i + '@example.com', name: 'User ' + i, plan: i % 3 ? 'free' : 'pro', seq: i } });
    }
    return { nextSync: String(from + entries.length), entries };
  },
};
