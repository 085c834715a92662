"""A ferry connector in Python for the customers of the local sample API
(`ferry sandbox --port 8787`). ferry runs it as `python3 connector.py` and
talks to it over stdin/stdout (docs/protocol.md); ferry_connector.py, beside
it, speaks the protocol, so this file holds only what is the API's.

Try it:  ferry sandbox --port 8787 &   then   ferry get / insert / patch /
delete / getupdates / check, each reading its input from in.json.
"""

from urllib.parse import quote

from ferry_connector import run


class Customers:
    def init(self, account):
        # Called once per run with account.json's values.
        if account.get("apiToken"):
            self.http.set_header("Authorization", "Bearer " + account["apiToken"])

    def check(self):
        self.http.get("/customers?limit=1")
        return {"success": True, "message": "the API answered"}

    def get(self, id):
        return self.http.get("/customers/" + quote(id, safe=""))

    def insert(self, value):
        created = self.http.post("/customers", value)
        # Under --dry-run the POST is not sent and answers {}: no id yet.
        return {"id": created.get("id")}

    def patch(self, id, value):
        self.http.patch("/customers/" + quote(id, safe=""), value)

    def delete(self, id):
        self.http.delete("/customers/" + quote(id, safe=""))

    def get_updates(self, last_sync):
        page = self.http.get("/customers?limit=100&updated_since=" + quote(last_sync or "0", safe=""))
        entries = [
            {"id": c["id"], "type": "delete"} if c.get("deleted") else {"id": c["id"], "type": "upsert", "value": c}
            for c in page["data"]
        ]
        return {"nextSync": page.get("next_cursor") or page["sync_token"], "entries": entries}


if __name__ == "__main__":
    run(Customers())
