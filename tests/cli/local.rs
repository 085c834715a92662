//! Every action on the local connectors, through the real binary.

use crate::snap;
use crate::support::Folder;

fn sqlite_folder() -> Folder {
    let f = Folder::new();
    f.write(
        "account.json",
        r#"{"connector": "sqlite", "path": "ferry.db"}"#,
    );
    f
}

#[test]
fn sqlite_insert_get_patch_delete_round_trip() {
    let f = sqlite_folder();
    snap!(
        "sqlite_insert",
        f.run(&[
            "insert",
            "--value",
            r#"{"id": "c1", "email": "ada@example.com"}"#
        ])
    );
    snap!("sqlite_get", f.run(&["get", "--id", "c1"]));
    snap!(
        "sqlite_patch",
        f.run(&["patch", "--id", "c1", "--value", r#"{"name": "Ada"}"#])
    );
    assert_eq!(f.run(&["get", "--id", "c1"]).ok_json()["name"], "Ada");
    snap!("sqlite_delete", f.run(&["delete", "--id", "c1"]));
    snap!("sqlite_get_deleted", f.run(&["get", "--id", "c1"]));
}
