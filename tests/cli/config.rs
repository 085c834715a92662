//! `${NAME}` references in account.json, through the real binary: replaced
//! from the environment, then from the folder's `.env`, the environment
//! winning. The errors live in errors.rs.

use crate::snap;
use crate::support::Folder;

fn folder() -> Folder {
    let f = Folder::new();
    f.write(
        "account.json",
        r#"{"connector": "jsonl", "path": "${DATA_DIR}/${FILE_NAME}.jsonl"}"#,
    );
    std::fs::create_dir_all(f.join("from-env")).expect("create a folder");
    std::fs::create_dir_all(f.join("from-dotenv")).expect("create a folder");
    f
}

#[test]
fn variables_from_the_environment() {
    let f = folder();
    let run = f.run_cmd(
        f.ferry()
            .env("DATA_DIR", "from-env")
            .env("FILE_NAME", "people")
            .arg("check"),
    );
    snap!("variables_from_env", run);
}

#[test]
fn variables_from_dotenv() {
    let f = folder();
    f.write(
        ".env",
        "# where the data lives\nexport DATA_DIR=from-dotenv\nFILE_NAME = \"people\"\n",
    );
    snap!("variables_from_dotenv", f.run(&["check"]));
}

#[test]
fn the_environment_wins_over_dotenv() {
    let f = folder();
    f.write(".env", "DATA_DIR=from-dotenv\nFILE_NAME=people\n");
    let run = f.run_cmd(f.ferry().env("DATA_DIR", "from-env").arg("check"));
    snap!("variables_env_wins", run);
}

#[test]
fn dotenv_is_read_from_the_folder_given_with_dash_c() {
    let f = Folder::new();
    f.write(
        "conn/account.json",
        r#"{"connector": "jsonl", "path": "${FILE_NAME}.jsonl"}"#,
    );
    f.write("conn/.env", "FILE_NAME=people\n");
    f.write("conn/people.jsonl", "{\"id\": \"p1\"}\n");
    let got = f.run(&["-C", "conn", "get", "--id", "p1"]).ok_json();
    assert_eq!(got["id"], "p1");
}
