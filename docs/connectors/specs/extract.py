#!/usr/bin/env python3
"""Write docs/connectors/specs/<connector>.json: the part of a vendor's
OpenAPI description that ferry's requests are checked against (the
operations ferry sends, their query parameter names, required headers and
the request body schemas reduced to type, required, properties, items,
enum, nullable, additionalProperties, oneOf/anyOf/allOf and $ref).
OpenAPI 3 and Swagger 2.0 (Mailchimp's) are read alike: a Swagger body
parameter is the request body, its `definitions` the schemas, and its
`basePath` starts every operation's path.

Usage: extract.py CONNECTOR SPEC_FILE [SPEC_FILE...] --repo OWNER/NAME
       --commit SHA --paths PATH_IN_REPO[,PATH...]
The operations per connector are listed below; the tests in
tests/cli/openapi.rs read the result.
"""
import json
import sys

import yaml

OPS = {
    "hubspot": [
        "GET /crm/v3/objects/contacts",
        "GET /crm/v3/objects/contacts/{contactId}",
        "POST /crm/v3/objects/contacts",
        "PATCH /crm/v3/objects/contacts/{contactId}",
        "DELETE /crm/v3/objects/contacts/{contactId}",
        "POST /crm/v3/objects/contacts/search",
        "POST /crm/v3/objects/contacts/batch/upsert",
        "GET /crm/v3/lists/object-type-id/{objectTypeId}/name/{listName}",
        "POST /crm/v3/lists",
        "PUT /crm/v3/lists/{listId}/memberships/add",
        "PUT /crm/v3/lists/{listId}/memberships/remove",
    ],
    "klaviyo": [
        "GET /api/profiles",
        "GET /api/profiles/{id}",
        "POST /api/profiles",
        "PATCH /api/profiles/{id}",
        "POST /api/profile-import",
        "POST /api/data-privacy-deletion-jobs",
        "POST /api/profile-bulk-import-jobs",
        "GET /api/profile-bulk-import-jobs/{job_id}",
        "GET /api/profile-bulk-import-jobs/{id}/import-errors",
        "GET /api/lists",
        "POST /api/lists",
        "POST /api/lists/{id}/relationships/profiles",
        "DELETE /api/lists/{id}/relationships/profiles",
    ],
    "intercom": [
        "GET /me",
        "GET /contacts",
        "POST /contacts",
        "GET /contacts/{contact_id}",
        "PUT /contacts/{contact_id}",
        "DELETE /contacts/{contact_id}",
        "GET /contacts/find_by_external_id/{external_id}",
        "POST /contacts/search",
        "POST /tags",
        "POST /contacts/{contact_id}/tags",
        "DELETE /contacts/{contact_id}/tags/{tag_id}",
    ],
    "mailchimp": [
        "GET /lists",
        "GET /lists/{list_id}",
        "POST /lists/{list_id}",
        "GET /lists/{list_id}/members",
        "GET /lists/{list_id}/members/{subscriber_hash}",
        "PUT /lists/{list_id}/members/{subscriber_hash}",
        "PATCH /lists/{list_id}/members/{subscriber_hash}",
        "DELETE /lists/{list_id}/members/{subscriber_hash}",
        "POST /lists/{list_id}/members/{subscriber_hash}/actions/delete-permanent",
        "POST /lists/{list_id}/members/{subscriber_hash}/tags",
        "GET /lists/{list_id}/merge-fields",
    ],
    "voucherify": [
        "GET /v1/customers",
        "POST /v1/customers",
        "GET /v1/customers/{customerId}",
        "PUT /v1/customers/{customerId}",
        "DELETE /v1/customers/{customerId}",
        "POST /v1/customers/bulk/async",
        "GET /v1/async-actions/{asyncActionId}",
    ],
    "zendesk": [
        "GET /api/v2/users/me",
        "GET /api/v2/users",
        "POST /api/v2/users",
        "GET /api/v2/users/{user_id}",
        "PUT /api/v2/users/{user_id}",
        "DELETE /api/v2/users/{user_id}",
        "GET /api/v2/users/search",
        "POST /api/v2/users/create_or_update",
        "POST /api/v2/users/create_or_update_many",
        "DELETE /api/v2/deleted_users/{deleted_user_id}",
        "GET /api/v2/job_statuses/{job_status_id}",
        "PUT /api/v2/users/{user_id}/tags",
        "DELETE /api/v2/users/{user_id}/tags",
        "GET /api/v2/user_fields",
        "GET /api/v2/incremental/users/cursor",
    ],
}

# Properties ferry never sends whose schemas would fill the extract: kept
# as names only (a request that sends one fails the check).
NEVER_SENT = {"hubspot": ["filterBranch", "listPermissions", "membershipSettings"]}

KEEP = ("type", "required", "enum", "nullable", "format")


def main():
    args = sys.argv[1:]
    name = args.pop(0)
    opts = {}
    files = []
    while args:
        a = args.pop(0)
        if a.startswith("--"):
            opts[a[2:]] = args.pop(0)
        else:
            files.append(a)
    docs = [load(f) for f in files]
    components = {}
    for d in docs:
        for k, v in d.get("components", {}).get("schemas", {}).items():
            components.setdefault(k, v)
        for k, v in d.get("definitions", {}).items():
            components.setdefault(k, v)
    params = {}
    for d in docs:
        for k, v in d.get("components", {}).get("parameters", {}).items():
            params.setdefault(k, v)
        for k, v in d.get("parameters", {}).items():
            params.setdefault(k, v)
    schemas = {}

    def ref_name(ref):
        return ref.rsplit("/", 1)[-1]

    def reduce(s):
        if not isinstance(s, dict):
            return s
        if "$ref" in s:
            n = ref_name(s["$ref"])
            if n not in schemas:
                schemas[n] = {}
                schemas[n] = reduce(components[n])
            return {"$ref": n}
        out = {k: s[k] for k in KEEP if k in s}
        if "properties" in s:
            out["properties"] = {
                k: ({"neverSent": True} if k in NEVER_SENT.get(name, []) else reduce(v))
                for k, v in s["properties"].items()
            }
        if "items" in s:
            out["items"] = reduce(s["items"])
        if isinstance(s.get("additionalProperties"), dict):
            out["additionalProperties"] = reduce(s["additionalProperties"])
        for k in ("oneOf", "anyOf", "allOf"):
            if k in s:
                out[k] = [reduce(x) for x in s[k]]
        return out

    ops = {}
    for op in OPS[name]:
        method, path = op.split(" ", 1)
        found = None
        for d in docs:
            o = d.get("paths", {}).get(path, {})
            if method.lower() in o:
                found = (o, o[method.lower()], d)
                break
        if found is None:
            sys.exit(f"{op}: not in the description")
        item, o, d = found
        entry = {"query": [], "requiredQuery": [], "headers": {}, "requiredHeaders": []}
        for p in item.get("parameters", []) + o.get("parameters", []):
            if "$ref" in p:
                p = params[ref_name(p["$ref"])]
            if p.get("in") == "query":
                entry["query"].extend(query_names(p))
                if p.get("required"):
                    entry["requiredQuery"].append(p["name"])
            if p.get("in") == "header":
                # Swagger 2 types a parameter in place, OpenAPI 3 in a schema.
                entry["headers"][p["name"]] = reduce(p.get("schema", p))
                if p.get("required"):
                    entry["requiredHeaders"].append(p["name"])
            if p.get("in") == "body":
                consumes = o.get("consumes") or d.get("consumes") or ["application/json"]
                entry["contentType"] = consumes[0]
                entry["bodyRequired"] = bool(p.get("required"))
                entry["body"] = reduce(p.get("schema", {}))
        body = o.get("requestBody")
        if body:
            content = body.get("content", {})
            mt = next(iter(content))
            entry["contentType"] = mt
            entry["bodyRequired"] = bool(body.get("required"))
            entry["body"] = reduce(content[mt].get("schema", {}))
        ops[f"{method} {d.get('basePath', '').rstrip('/')}{path}"] = entry
    info = docs[0].get("info", {})
    out = {
        "about": "Extract of the vendor's OpenAPI description: only what ferry's requests are checked against "
        "(tests/cli/openapi.rs). Written by docs/connectors/specs/extract.py; do not edit by hand.",
        "source": f"https://github.com/{opts['repo']}",
        "commit": opts["commit"],
        "files": opts["paths"].split(","),
        "version": info.get("version"),
        "operations": ops,
        "schemas": dict(sorted(schemas.items())),
    }
    json.dump(out, sys.stdout, indent=1, sort_keys=False)
    sys.stdout.write("\n")


def query_names(p):
    """The names a query parameter is sent by: its own, or for a
    `deepObject` (Zendesk's `page`) `name[key]` for each key of its object
    schema, and its own name only if a branch of the schema is not an
    object (`page=2` of offset pagination)."""
    if p.get("style") != "deepObject":
        return [p["name"]]
    schema = p.get("schema", {})
    branches = schema.get("oneOf") or schema.get("anyOf") or [schema]
    names = [p["name"]] if any("properties" not in b for b in branches) else []
    for b in branches:
        names.extend(f"{p['name']}[{k}]" for k in b.get("properties", {}))
    return names


class Loader(yaml.SafeLoader):
    """YAML 1.1's `=` (the "value" tag) read as the string it is (Zendesk's
    trigger examples hold `change: =`), not refused."""


Loader.add_constructor("tag:yaml.org,2002:value", lambda loader, node: loader.construct_scalar(node))


def load(f):
    text = open(f).read()
    return json.loads(text) if f.endswith(".json") else yaml.load(text, Loader=Loader)


if __name__ == "__main__":
    main()
