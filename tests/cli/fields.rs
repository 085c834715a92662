//! `ferry fields` and `ferry options` through the real binary: what each
//! SaaS destination takes, asked live where the vendor can say (a Mailchimp
//! audience's merge fields, HubSpot's contact properties, Intercom's data
//! attributes, Zendesk's custom user fields) against strict mock servers, from the spec where it cannot
//! (Klaviyo, Voucherify: no request at all); an option's values (Mailchimp's
//! audiences for `listId`, before the account has one); and the errors of a
//! connector that is not a destination or lists no values.

use serde_json::json;
use wiremock::matchers::{header, method, path, query_param};
use wiremock::Mock;

use crate::snap;
use crate::support::{ok, Folder, MountOnce};

use crate::mailchimp::{basic as mc_basic, KEY as MC_KEY};

/// A Mailchimp folder, its account with the audience a1b2c3 or without one.
fn mailchimp(base: &str, list: Option<&str>) -> Folder {
    let f = Folder::new();
    let mut account: serde_json::Value =
        serde_json::from_str(&crate::mailchimp::account(base, json!({}))).unwrap();
    match list {
        Some(list) => account["listId"] = json!(list),
        None => {
            account.as_object_mut().map(|a| a.remove("listId"));
        }
    }
    f.write("account.json", &account.to_string());
    f
}

/// An audience's merge fields, as Mailchimp lists them.
pub fn merge_fields_answer(required_fname: bool) -> serde_json::Value {
    json!({"merge_fields": [
        {"merge_id": 0, "tag": "EMAIL", "name": "Email Address", "type": "email", "required": true},
        {"merge_id": 1, "tag": "FNAME", "name": "First Name", "type": "text", "required": required_fname},
        {"merge_id": 3, "tag": "LTV", "name": "Lifetime value", "type": "number", "required": false},
        {"merge_id": 4, "tag": "ADDRESS", "name": "Address", "type": "address", "required": false}],
        "list_id": "a1b2c3", "total_items": 4})
}

#[tokio::test(flavor = "multi_thread")]
async fn mailchimp_fields_are_the_audiences_merge_fields() {
    let s = crate::support::mock::server().await;
    Mock::given(method("GET"))
        .and(path("/lists/a1b2c3/merge-fields"))
        .and(query_param("count", "1000"))
        .and(query_param("offset", "0"))
        .and(header("Accept", "application/json"))
        .once(ok(merge_fields_answer(true)), &s)
        .await;
    let f = mailchimp(&s.uri(), Some("a1b2c3"));
    let run = f.run(&["fields"]);
    run.hides(&[MC_KEY, &mc_basic()], "the API key");
    let out = run.ok_json();
    assert_eq!(out["required"], json!(["email_address", "FNAME"]));
    snap!("fields_mailchimp", run);
}

#[tokio::test(flavor = "multi_thread")]
async fn hubspot_fields_are_the_portals_contact_properties() {
    let s = crate::support::mock::server().await;
    crate::hubspot::hs("GET", "/crm/v3/properties/contacts")
        .once(
            ok(json!({"results": [
                {"name": "email", "label": "Email", "type": "string", "fieldType": "text",
                    "modificationMetadata": {"readOnlyValue": false}},
                {"name": "lifecyclestage", "label": "Lifecycle Stage", "type": "enumeration",
                    "fieldType": "radio", "modificationMetadata": {"readOnlyValue": false}},
                {"name": "hs_object_id", "label": "Record ID", "type": "number",
                    "fieldType": "number", "modificationMetadata": {"readOnlyValue": true}},
                {"name": "plan_renews", "label": "Plan renews", "type": "date",
                    "fieldType": "date", "modificationMetadata": {"readOnlyValue": false}}]})),
            &s,
        )
        .await;
    let f = crate::hubspot::folder(&s.uri());
    let run = f.run(&["fields"]);
    run.hides(&[crate::hubspot::TOKEN], "the token");
    assert_eq!(run.ok_json()["key"], "email");
    snap!("fields_hubspot", run);
}

#[tokio::test(flavor = "multi_thread")]
async fn intercom_fields_are_the_workspaces_data_attributes() {
    let s = crate::support::mock::server().await;
    Mock::given(method("GET"))
        .and(path("/data_attributes"))
        .and(query_param("model", "contact"))
        .and(header("Intercom-Version", "2.14"))
        .once(
            ok(json!({"type": "list", "data": [
                {"type": "data_attribute", "name": "email", "full_name": "email", "label": "Email",
                    "data_type": "string", "api_writable": true, "custom": false, "model": "contact"},
                {"type": "data_attribute", "name": "last_seen_at", "full_name": "last_seen_at",
                    "label": "Last seen", "data_type": "date", "api_writable": true, "custom": false},
                {"type": "data_attribute", "name": "browser", "full_name": "browser",
                    "label": "Browser", "data_type": "string", "api_writable": false, "custom": false},
                {"type": "data_attribute", "name": "plan", "full_name": "custom_attributes.plan",
                    "label": "plan", "data_type": "string", "api_writable": true, "custom": true}]})),
            &s,
        )
        .await;
    let f = crate::intercom::folder(&s.uri());
    let run = f.run(&["fields"]);
    run.hides(&[crate::intercom::TOKEN], "the token");
    snap!("fields_intercom", run);
}

/// Klaviyo keeps no definitions of its properties, and Voucherify's are
/// its spec's: both answer from the spec without a request (the servers
/// fail on any).
#[tokio::test(flavor = "multi_thread")]
async fn klaviyo_and_voucherify_fields_come_from_the_spec() {
    let s = crate::support::mock::server().await;
    let klaviyo = crate::klaviyo::folder(&s.uri());
    let run = klaviyo.run(&["fields"]);
    assert_eq!(run.ok_json()["key"], "email", "{}", run.render());
    snap!("fields_klaviyo", run);
    let voucherify = crate::voucherify::folder(&s.uri());
    let run = voucherify.run(&["fields"]);
    assert_eq!(run.ok_json()["key"], "source_id", "{}", run.render());
    snap!("fields_voucherify", run);
}

#[test]
fn a_source_only_connector_has_no_fields() {
    let f = Folder::new();
    f.write(
        "account.json",
        &json!({"connector": "segment", "spaceId": "spa_1", "accessToken": "t",
            "baseUrl": "http://127.0.0.1:9"})
        .to_string(),
    );
    snap!("fields_not_a_destination", f.run(&["fields"]));
}

#[tokio::test(flavor = "multi_thread")]
async fn options_list_mailchimps_audiences_before_the_account_has_one() {
    let s = crate::support::mock::server().await;
    Mock::given(method("GET"))
        .and(path("/lists"))
        .and(query_param("count", "1000"))
        .and(query_param("offset", "0"))
        .and(query_param("fields", "lists.id,lists.name,total_items"))
        .once(
            ok(json!({"lists": [{"id": "a1b2c3", "name": "Newsletter"},
                {"id": "d4e5f6", "name": "Customers"}], "total_items": 2})),
            &s,
        )
        .await;
    let f = mailchimp(&s.uri(), None);
    let run = f.run(&["options", "listId"]);
    run.hides(&[MC_KEY, &mc_basic()], "the API key");
    assert_eq!(
        run.ok_json(),
        json!({"option": "listId", "choices": [
            {"value": "a1b2c3", "label": "Newsletter"},
            {"value": "d4e5f6", "label": "Customers"}]})
    );
    // Any other command still needs the option.
    let get = f.run(&["get", "--id", "a@x.com"]);
    assert_eq!(get.code, 2, "{}", get.render());
    assert!(get.stderr.contains("listId"), "{}", get.render());
}

#[test]
fn options_without_a_list_or_of_no_such_name_say_so() {
    let f = mailchimp("http://127.0.0.1:9", Some("a1b2c3"));
    snap!(
        "options_no_values",
        f.run(&["options", "statusIfNew", "--dry-run"])
    );
    snap!("options_no_such_option", f.run(&["options", "audience"]));
}

/// A profile without a merge field the audience requires is invalid and
/// is not sent; the merge fields are read once for the run.
#[tokio::test(flavor = "multi_thread")]
async fn an_export_refuses_a_profile_without_a_required_merge_field() {
    let s = crate::support::mock::server().await;
    Mock::given(method("GET"))
        .and(path("/lists/a1b2c3/merge-fields"))
        .once(ok(merge_fields_answer(true)), &s)
        .await;
    Mock::given(method("POST"))
        .and(path("/lists/a1b2c3"))
        .and(wiremock::matchers::body_json(json!({"update_existing": true, "members": [
            {"email_address": "a@x.com", "status_if_new": "subscribed", "merge_fields": {"FNAME": "Ada"}}]})))
        .once(
            ok(json!({"new_members": [{"email_address": "a@x.com"}], "updated_members": [], "errors": []})),
            &s,
        )
        .await;
    let f = mailchimp(&s.uri(), Some("a1b2c3"));
    f.write(
        "p.jsonl",
        "{\"id\": \"p1\", \"properties\": {\"email_address\": \"a@x.com\", \"FNAME\": \"Ada\"}}\n\
         {\"id\": \"p2\", \"properties\": {\"email_address\": \"b@x.com\"}}\n",
    );
    let run = f.run_line("export --to . --input p.jsonl --errors e.jsonl");
    run.hides(&[MC_KEY], "the API key");
    assert_eq!(run.code, 3, "{}", run.render());
    assert_eq!(
        (&run.json()["created"], &run.json()["invalid"]),
        (&json!(1), &json!(1))
    );
    let problems = f.read("e.jsonl");
    assert!(
        problems.contains("p2") && problems.contains("FNAME"),
        "{problems}"
    );
}

/// Zendesk's custom user fields, cursor page after cursor page to the end.
#[tokio::test(flavor = "multi_thread")]
async fn zendesk_fields_are_the_accounts_custom_user_fields() {
    let s = crate::support::mock::server().await;
    Mock::given(method("GET"))
        .and(path("/user_fields"))
        .and(query_param("page[size]", "100"))
        .and(wiremock::matchers::query_param_is_missing("page[after]"))
        .once(
            ok(json!({"user_fields": [
                {"id": 7, "key": "membership_level", "type": "dropdown", "title": "Membership",
                    "active": true, "custom_field_options": [{"name": "Silver", "value": "silver"}]},
                {"id": 8, "key": "renews_on", "type": "date", "title": "Renews on", "active": true}],
                "meta": {"has_more": true, "after_cursor": "c2"}})),
            &s,
        )
        .await;
    Mock::given(method("GET"))
        .and(path("/user_fields"))
        .and(query_param("page[after]", "c2"))
        .once(
            ok(json!({"user_fields": [
                {"id": 9, "key": "vip", "type": "checkbox", "title": "VIP", "active": false}],
                "meta": {"has_more": false, "after_cursor": null}})),
            &s,
        )
        .await;
    let f = crate::zendesk::folder(&s.uri());
    let run = f.run(&["fields"]);
    run.hides(
        &[crate::zendesk::TOKEN, &crate::zendesk::basic()],
        "the token",
    );
    let out = run.ok_json();
    assert_eq!(out["key"], "external_id", "{}", run.render());
    snap!("fields_zendesk", run);
}

/// `--dry-run` shows the request `fields` and `options` would send (the
/// key masked) and sends nothing: the server mounts no answer.
#[tokio::test(flavor = "multi_thread")]
async fn dry_runs_show_the_request_and_send_nothing() {
    let s = crate::support::mock::server().await;
    let f = mailchimp(&s.uri(), Some("a1b2c3"));
    for (name, args) in [
        ("fields_dry_run", &["fields", "--dry-run"][..]),
        ("options_dry_run", &["options", "listId", "--dry-run"][..]),
    ] {
        let run = f.run(args);
        run.hides(&[MC_KEY, &mc_basic()], "the API key");
        assert_eq!(run.code, 0, "{}", run.render());
        snap!(name, run);
    }
}
