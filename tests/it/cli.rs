//! The admin CLI, run as the real binary against a real database.

use std::process::Command;

use serde_json::Value;

fn keyhaven(dir: &std::path::Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_keyhaven"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("KEYHAVEN_DATA_DIR", dir)
        .env(
            "KEYHAVEN_DATABASE_URL",
            format!("sqlite://{}", dir.join("db/keyhaven.db").display()),
        )
        .output()
        .unwrap();
    (out.status.success(), String::from_utf8(out.stdout).unwrap())
}

#[test]
fn account_create_prints_exactly_one_json_object() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, stdout) = keyhaven(dir.path(), &["account", "create", "--name", "Acme"]);
    assert!(ok);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    let v: Value = serde_json::from_str(lines[0]).unwrap();
    let obj = v.as_object().unwrap();
    assert_eq!(obj.len(), 2);
    let account = v["accountId"].as_str().unwrap();
    let key = v["apiKey"].as_str().unwrap();
    assert!(key.len() >= 32);

    let (ok, stdout) = keyhaven(dir.path(), &["account", "list"]);
    assert!(ok);
    let list: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(list[0]["accountId"], account);
    assert_eq!(list[0]["name"], "Acme");

    let (ok, stdout) = keyhaven(
        dir.path(),
        &["key", "create", "--account", account, "--label", "ci"],
    );
    assert!(ok);
    let created: Value = serde_json::from_str(&stdout).unwrap();
    let key_id = created["keyId"].as_str().unwrap();
    assert_ne!(created["apiKey"], key);

    let (ok, stdout) = keyhaven(dir.path(), &["key", "list", "--account", account]);
    assert!(ok);
    assert!(!stdout.contains(key), "keys are never listed");
    assert_eq!(
        serde_json::from_str::<Value>(&stdout)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        2
    );

    let (ok, _) = keyhaven(dir.path(), &["key", "revoke", key_id]);
    assert!(ok);
    let (ok, _) = keyhaven(dir.path(), &["key", "revoke", key_id]);
    assert!(!ok, "revoking twice fails");
    let (ok, _) = keyhaven(dir.path(), &["key", "create", "--account", "nope"]);
    assert!(!ok);
}

#[test]
fn app_create_prints_exactly_one_json_object() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "app",
        "create",
        "--name",
        "Shop",
        "--auth-origin",
        "https://shop.example",
    ];
    let (ok, stdout) = keyhaven(dir.path(), &args);
    assert!(ok);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    let v: Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(v.as_object().unwrap().len(), 2);
    let app_id = v["app_id"].as_str().unwrap();
    assert!(v["api_key"].as_str().unwrap().len() >= 32);

    let with_id = [&args[..], &["--id", "keepMe"]].concat();
    let (ok, stdout) = keyhaven(dir.path(), &with_id);
    assert!(ok);
    assert_eq!(
        serde_json::from_str::<Value>(&stdout).unwrap()["app_id"],
        "keepMe"
    );
    let (ok, _) = keyhaven(dir.path(), &with_id);
    assert!(!ok, "an id is taken once");

    let (ok, stdout) = keyhaven(dir.path(), &["app", "rotate-key", app_id]);
    assert!(ok);
    assert!(serde_json::from_str::<Value>(&stdout).unwrap()["kid"].is_string());
    let (ok, stdout) = keyhaven(dir.path(), &["app", "list"]);
    assert!(ok);
    assert_eq!(
        serde_json::from_str::<Value>(&stdout)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let (ok, _) = keyhaven(
        dir.path(),
        &["app", "create", "--name", "X", "--auth-origin", "nope"],
    );
    assert!(!ok);
}
