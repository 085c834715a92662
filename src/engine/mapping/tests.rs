//! Unit tests of `--map` and the validator: pointers, rests, constants,
//! drops, type conversions and the warnings that name a record.

use super::*;
use serde_json::json;

fn rec(v: Value) -> Record {
    match v {
        Value::Object(m) => m,
        _ => panic!("not an object"),
    }
}

#[test]
fn a_date_time_for_a_date_field_keeps_its_date() {
    let v = Validator::new("id", vec![FieldSpec::new("born", FieldType::Date, "")]);
    let Checked::Valid { record, warnings } =
        v.check(rec(json!({"id": "1", "born": "1990-05-01T23:00:00-05:00"})))
    else {
        panic!("rejected")
    };
    assert_eq!(record["born"], "1990-05-01");
    assert!(warnings.is_empty());
}

#[test]
fn without_a_map_records_pass_through() {
    let m = Mapping {
        id_field: "id".into(),
        ..Mapping::default()
    };
    let r = rec(json!({"id": "1", "a": 2}));
    assert_eq!(m.apply(r.clone()), Checked::valid(r));
}

#[test]
fn a_map_renames_points_sets_and_drops() {
    let entries = Mapping::parse_map(
        json!({"email": "mail", "city": "/address/city", "origin": {"const": "import"}, "secret": null, "tag": "/tags/1"}),
        Path::new("map.json"),
    )
    .unwrap();
    let m = Mapping {
        entries,
        id_from: Some(Source::path("/ids/crm")),
        id_field: "id".into(),
    };
    let Checked::Valid { record: out, .. } = m.apply(rec(json!({
        "ids": {"crm": 7}, "mail": "a@x", "secret": "s", "address": {"city": "Oslo"}, "tags": ["x", "y"]
    }))) else {
        panic!("rejected")
    };
    assert_eq!(
        Value::Object(out),
        json!({"id": 7, "ids": {"crm": 7}, "mail": "a@x", "address": {"city": "Oslo"}, "tags": ["x", "y"],
               "email": "a@x", "city": "Oslo", "origin": "import", "tag": "y"})
    );
}

#[test]
fn the_id_field_is_read_after_the_map_and_never_falls_back() {
    let m = Mapping {
        entries: vec![("email".into(), Source::path("mail"))],
        id_from: Some(Source::path("email")),
        id_field: "id".into(),
    };
    let Checked::Valid { record, .. } = m.apply(rec(json!({"id": "old", "mail": "a@x"}))) else {
        panic!("rejected")
    };
    assert_eq!(
        Value::Object(record),
        json!({"id": "a@x", "mail": "a@x", "email": "a@x"})
    );
    for without in [
        json!({"id": "old"}),
        json!({"id": "old", "mail": null}),
        json!({"id": "old", "mail": " "}),
    ] {
        assert_eq!(
            m.apply(rec(without.clone())),
            Checked::Rejected {
                record: rec(without),
                reason: "missing email".into()
            }
        );
    }
}

#[test]
fn map_files_with_bad_sources_are_refused() {
    for bad in [
        json!({"a": 1}),
        json!({"a": ""}),
        json!({"a": {"x": 1}}),
        json!([]),
    ] {
        assert!(Mapping::parse_map(bad, Path::new("m.json")).is_err());
    }
}

#[test]
fn a_rest_takes_the_keys_no_other_entry_reads_and_pointers_build_objects() {
    let entries = Mapping::parse_map(
        json!({"source_id": "id", "email": "/traits/email", "/address/city": "/traits/address/city",
               "/address/line_1": "/traits/address/street", "metadata": {"rest": "/traits"},
               "traits": null, "id": null}),
        Path::new("map.json"),
    )
    .unwrap();
    let m = Mapping {
        entries,
        id_from: None,
        id_field: "source_id".into(),
    };
    let Checked::Valid { record, .. } = m.apply(rec(json!({
        "id": "u1", "address": "kept out: the map writes address",
        "traits": {"email": "a@x", "plan": "pro", "address": {"city": "Oslo", "street": "Main 1", "zip": "0150"}, "vip": true}
    }))) else {
        panic!("rejected")
    };
    assert_eq!(
        Value::Object(record),
        json!({"source_id": "u1", "email": "a@x", "address": {"city": "Oslo", "line_1": "Main 1"},
               "metadata": {"plan": "pro", "vip": true}})
    );
    // Nothing left, nothing there: the field is left out; no address
    // trait, no address.
    for traits in [json!({"email": "a@x"}), json!(null)] {
        let Checked::Valid { record, .. } = m.apply(rec(json!({"id": "u2", "traits": traits})))
        else {
            panic!("rejected")
        };
        assert!(!record.contains_key("metadata"), "{record:?}");
        assert!(!record.contains_key("address"), "{record:?}");
    }
    // The rest of a value that is no object rejects the record.
    match m.apply(rec(json!({"id": "u3", "traits": "plain"}))) {
        Checked::Rejected { reason, .. } => {
            assert_eq!(reason, "/traits is a string, so its rest cannot be taken")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_rest_of_a_field_and_an_escaped_pointer() {
    let entries = Mapping::parse_map(
        json!({"a/b": "/t/a~1b", "extra": {"rest": "t"}, "t": null}),
        Path::new("m.json"),
    )
    .unwrap();
    let m = Mapping {
        entries,
        id_from: None,
        id_field: "id".into(),
    };
    let Checked::Valid { record, .. } = m.apply(rec(json!({"id": "1", "t": {"a/b": 1, "c": 2}})))
    else {
        panic!("rejected")
    };
    assert_eq!(
        Value::Object(record),
        json!({"id": "1", "a/b": 1, "extra": {"c": 2}})
    );
}

#[test]
fn bad_rests_and_destination_pointers_are_refused_with_the_key() {
    for (bad, says) in [
        (json!({"m": {"rest": ""}}), "field \"m\" in map file m.json has an invalid rest: \"\""),
        (json!({"m": {"rest": 3}}), "field \"m\" in map file m.json has an invalid rest: 3"),
        (json!({"m": {"rest": null}}), "field \"m\" in map file m.json has an invalid rest: null"),
        (json!({"m": {"rest": "/t", "x": 1}}), "field \"m\" in map file m.json has an invalid source"),
        (json!({"/a//b": "x"}), "key \"/a//b\" in map file m.json is not a destination pointer"),
        (json!({"/a/": "x"}), "key \"/a/\" in map file m.json is not a destination pointer"),
        (json!({"/a/b": null}), "key \"/a/b\" in map file m.json drops a destination pointer"),
        (json!({"address": "x", "/address/city": "y"}), "keys \"address\" and \"/address/city\" in map file m.json both write inside \"address\""),
        (json!({"/a": "x", "a": "y"}), "keys \"/a\" and \"a\" in map file m.json both write \"a\""),
    ] {
        let err = Mapping::parse_map(bad.clone(), Path::new("m.json")).unwrap_err();
        assert!(format!("{err}").starts_with(says), "{bad}: {err}");
        let failure = crate::error::find_failure(&err).expect("a usage error");
        assert_eq!(failure.kind, crate::error::Kind::Usage, "{bad}");
        assert!(failure.hint.is_some(), "{bad}");
    }
}

#[test]
fn a_warning_names_the_record_its_offset_and_the_value() {
    let v = validator();
    for (value, shown) in [
        (json!("12/05/1990"), "\"12/05/1990\""),
        (json!("1990-13-01"), "\"1990-13-01\""),
        (json!(""), "\"\""),
        (json!(19900512), "19900512"),
        (json!({"y": 1990}), "{\"y\":1990}"),
    ] {
        let Checked::Valid { record, warnings } =
            v.check(rec(json!({"id": "cus_1", "name": "a", "birthdate": value})))
        else {
            panic!("rejected")
        };
        assert_eq!(record["birthdate"], Value::Null);
        assert_eq!(
            warnings[0].line("cus_1", 12),
            format!("record cus_1 (offset 12): birthdate {shown} is not an ISO 8601 date (YYYY-MM-DD); set to null")
        );
        assert_eq!(
            warnings[0].reason,
            "birthdate is not an ISO 8601 date (YYYY-MM-DD); set to null"
        );
    }
    let long = "x".repeat(100);
    let Checked::Valid { warnings, .. } =
        v.check(rec(json!({"id": "c", "name": "a", "birthdate": long})))
    else {
        panic!("rejected")
    };
    let line = warnings[0].line("c", 0);
    assert!(
        line.contains(&format!("birthdate \"{}...", "x".repeat(56))),
        "{line}"
    );
    assert!(line.len() < 160, "{line}");
}

fn validator() -> Validator {
    Validator::new(
        "id",
        vec![
            FieldSpec::new("id", FieldType::String, "").required(),
            FieldSpec::new("name", FieldType::String, "").required(),
            FieldSpec::new("birthdate", FieldType::Date, ""),
            FieldSpec::new("age", FieldType::Integer, ""),
            FieldSpec::new("score", FieldType::Number, ""),
            FieldSpec::new("vip", FieldType::Boolean, ""),
        ],
    )
}

#[test]
fn missing_ids_and_required_fields_are_rejected() {
    let v = validator();
    for (r, why) in [
        (json!({"name": "a"}), "missing id"),
        (json!({"id": "", "name": "a"}), "missing id"),
        (json!({"id": null, "name": "a"}), "missing id"),
        (json!({"id": "1"}), "missing required field name"),
        (
            json!({"id": "1", "name": null}),
            "missing required field name",
        ),
    ] {
        match v.check(rec(r)) {
            Checked::Rejected { reason, .. } => assert_eq!(reason, why),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn ids_that_are_not_text_or_exact_integers_say_what_they_are() {
    let v = validator();
    for (r, why) in [
        (json!({"id": true, "name": "a"}), "id must be a string or number, got a boolean"),
        (json!({"id": {"a": 1}, "name": "a"}), "id must be a string or number, got an object"),
        (json!({"id": [1], "name": "a"}), "id must be a string or number, got an array"),
        (json!({"id": 1.5, "name": "a"}), "id 1.5 is not an integer of at most 64 bits, so it cannot be kept exactly; write it as a string"),
    ] {
        match v.check(rec(r)) {
            Checked::Rejected { reason, .. } => assert_eq!(reason, why),
            other => panic!("{other:?}"),
        }
    }
    let big: Value = serde_json::from_str(r#"{"id": 18446744073709551616, "name": "a"}"#).unwrap();
    assert!(matches!(v.check(rec(big)), Checked::Rejected { .. }));
    let max: Value = serde_json::from_str(r#"{"id": 18446744073709551615, "name": "a"}"#).unwrap();
    match v.check(rec(max)) {
        Checked::Valid { record, .. } => assert_eq!(record["id"], "18446744073709551615"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn unambiguous_values_are_converted_and_bad_dates_nulled() {
    let v = validator();
    let Checked::Valid { record, warnings } = v.check(rec(json!({
        "id": 12, "name": 3, "birthdate": "03/04/1990", "age": "42", "score": "1.5", "vip": "true"
    }))) else {
        panic!("rejected")
    };
    assert_eq!(
        Value::Object(record),
        json!({"id": "12", "name": "3", "birthdate": null, "age": 42, "score": 1.5, "vip": true})
    );
    assert_eq!(
        warnings,
        vec!["birthdate is not an ISO 8601 date (YYYY-MM-DD); set to null"]
    );
    let Checked::Valid { warnings, .. } = v.check(rec(
        json!({"id": "1", "name": "a", "age": "forty", "vip": "yes"}),
    )) else {
        panic!("rejected")
    };
    assert_eq!(
        warnings,
        vec![
            "age is not an integer; set to null",
            "vip is not a boolean; set to null"
        ]
    );
}

#[test]
fn a_required_field_that_cannot_be_converted_rejects() {
    let v = Validator::new(
        "email",
        vec![
            FieldSpec::new("id", FieldType::String, "").required(),
            FieldSpec::new("born", FieldType::Date, "").required(),
        ],
    );
    // "id" stands for the id field (email) here, so it is not required itself.
    match v.check(rec(json!({"email": "a@x", "born": "yesterday"}))) {
        Checked::Rejected { reason, .. } => {
            assert_eq!(reason, "born is not an ISO 8601 date (YYYY-MM-DD)")
        }
        other => panic!("{other:?}"),
    }
}
