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

    // A second API key, then the first one revoked.
    let create_key = ["app", "create-api-key", app_id, "--name", "ci"];
    let (ok, stdout) = keyhaven(dir.path(), &create_key);
    assert!(ok, "{stdout}");
    let created: Value = serde_json::from_str(&stdout).unwrap();
    assert!(created["secret"].as_str().unwrap().starts_with("kh_"));
    let (ok, stdout) = keyhaven(dir.path(), &["app", "list-api-keys", app_id]);
    assert!(ok);
    let keys: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(keys.as_array().unwrap().len(), 2, "{keys}");
    assert!(!stdout.contains(created["secret"].as_str().unwrap()));
    let first = keys[0]["id"].as_str().unwrap();
    let (ok, _) = keyhaven(dir.path(), &["app", "revoke-api-key", app_id, first]);
    assert!(ok);
    let last = created["api_key"]["id"].as_str().unwrap();
    let (ok, _) = keyhaven(dir.path(), &["app", "revoke-api-key", app_id, last]);
    assert!(!ok, "the last key stays");
}

#[test]
fn app_social_set_and_delete_as_the_spec_writes_them() {
    let dir = tempfile::tempdir().unwrap();
    let create = [
        "app",
        "create",
        "--name",
        "Shop",
        "--auth-origin",
        "https://shop.example",
    ];
    let (ok, stdout) = keyhaven(dir.path(), &create);
    assert!(ok);
    let app_id = serde_json::from_str::<Value>(&stdout).unwrap()["app_id"]
        .as_str()
        .unwrap()
        .to_string();
    let set = |extra: &[&str]| {
        let args = [
            &["app", "social", "set", "--app", app_id.as_str()][..],
            extra,
        ]
        .concat();
        keyhaven(dir.path(), &args)
    };
    let secret = "gh-client-secret-1";
    let github = [
        "--type",
        "github",
        "--client-id",
        "gh-id",
        "--client-secret",
        secret,
    ];
    let (ok, stdout) = set(&github);
    assert!(ok, "{stdout}");
    let shown: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(shown["social_connections"]["github"]["client_id"], "gh-id");
    assert!(!stdout.contains(secret));

    let oidc = [
        "--type",
        "corp",
        "--client-id",
        "c",
        "--client-secret",
        "s",
        "--issuer",
        "https://login.corp.example",
    ];
    assert!(set(&oidc).0);
    let oauth2 = [
        "--type",
        "intranet",
        "--client-id",
        "c",
        "--client-secret",
        "s",
        "--authorize-url",
        "https://intra.example/authorize",
        "--token-url",
        "https://intra.example/token",
        "--userinfo-url",
        "https://intra.example/userinfo",
    ];
    assert!(set(&oauth2).0);
    let incomplete = [
        "--type",
        "intranet2",
        "--client-id",
        "c",
        "--client-secret",
        "s",
        "--token-url",
        "https://intra.example/token",
    ];
    assert!(!set(&incomplete).0);

    // Apple: a P-256 key file instead of a secret.
    let pkcs8 = aws_lc_rs::signature::EcdsaKeyPair::generate_pkcs8(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &aws_lc_rs::rand::SystemRandom::new(),
    )
    .unwrap();
    use base64::Engine as _;
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        base64::engine::general_purpose::STANDARD.encode(pkcs8.as_ref())
    );
    let key_file = dir.path().join("AuthKey.p8");
    std::fs::write(&key_file, pem).unwrap();
    let key_file = key_file.to_str().unwrap();
    let apple = [
        "--type",
        "apple",
        "--client-id",
        "com.shop.web",
        "--apple-team-id",
        "TEAM",
        "--apple-key-id",
        "KEY",
    ];
    assert!(!set(&apple).0, "Apple needs its key");
    let (ok, stdout) = set(&[&apple[..], &["--apple-private-key-file", key_file]].concat());
    assert!(ok, "{stdout}");
    let shown: Value = serde_json::from_str(&stdout).unwrap();
    let names: Vec<&String> = shown["social_connections"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(names, ["apple", "corp", "github", "intranet"]);
    assert!(!stdout.contains("PRIVATE KEY"));

    let delete = [
        "app",
        "social",
        "delete",
        "--app",
        app_id.as_str(),
        "--type",
        "corp",
    ];
    assert!(keyhaven(dir.path(), &delete).0);
    assert!(!keyhaven(dir.path(), &delete).0, "deleted once");
}

/// The data folder and everything the server writes into it are the owner's alone: the
/// database (and its WAL), the generated secret and the development outbox log.
#[tokio::test]
async fn the_data_folder_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = tokio::process::Command::new(env!("CARGO_BIN_EXE_keyhaven"))
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("KEYHAVEN_DATA_DIR", &data)
        .env("KEYHAVEN_LISTEN", format!("127.0.0.1:{port}"))
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let mut ready = false;
    for _ in 0..100 {
        if http.get(format!("{base}/readyz")).send().await.is_ok() {
            ready = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(ready, "the server did not come up");
    let created = Command::new(env!("CARGO_BIN_EXE_keyhaven"))
        .args(["account", "create", "--name", "Acme"])
        .env_clear()
        .env("KEYHAVEN_DATA_DIR", &data)
        .output()
        .unwrap();
    let created: Value = serde_json::from_slice(&created.stdout).unwrap();
    let sent = http
        .post(format!("{base}/2fa/v1/otp?number=%2B4915123456789"))
        .header("apikey", created["apiKey"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 200);
    let log = data.join("outbox.log");
    for _ in 0..100 {
        if log.exists() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let mode = |name: &str| {
        let path = data.join(name);
        let meta = std::fs::metadata(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        meta.permissions().mode() & 0o777
    };
    assert_eq!(mode(""), 0o700, "the data folder");
    for file in [
        "keyhaven.db",
        "keyhaven.db-wal",
        "keyhaven.db-shm",
        "secret.key",
        "outbox.log",
    ] {
        assert_eq!(mode(file), 0o600, "{file}");
    }
    server.kill().await.unwrap();
}
