//! Moving users in: `keyhaven import passage` and `keyhaven export`, run as the real binary
//! against the test server's database, and the imported passkeys logging in over HTTP.

use std::path::Path;

use keyhaven::bench::authenticator::SoftAuthenticator;
use reqwest::Method;
use serde_json::{json, Value};

use crate::{
    both_backends,
    harness::{Backend, TestApp},
    import_keys::{ExternalKey, KeyKind},
    passage::{call, verify, PassageApp},
    passkeys::{log_in, register},
};

both_backends!(
    an_export_imported_elsewhere_logs_in_with_the_same_passkeys,
    keys_made_outside_keyhaven_log_in,
    malformed_records_are_reported_and_leave_nothing_behind,
    a_changed_record_updates_and_the_csv_template_imports,
);

const ORIGIN: &str = "https://shop.example";
const APP_ID: &str = "passageApp0123";

/// `keyhaven ARGS` against the test server's database: (success, stdout, stderr).
async fn keyhaven(app: &TestApp, args: &[&str]) -> (bool, String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_keyhaven"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("KEYHAVEN_DATA_DIR", &app.config.data_dir)
        .env("KEYHAVEN_DATABASE_URL", app.config.database_url())
        .env("KEYHAVEN_SECRET", "test-secret")
        .output()
        .await
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// The app as the hosted service had it: its old id, on the shop's origin, with a metadata
/// schema.
async fn old_app(app: &TestApp) -> PassageApp {
    let settings = json!({"user_metadata_schema": [
        {"field_name": "plan", "type": "string", "friendly_name": "Plan"},
        {"field_name": "seats", "type": "integer", "friendly_name": "Seats"},
    ]})
    .to_string();
    let (ok, out, err) = keyhaven(
        app,
        &[
            "app",
            "create",
            "--id",
            APP_ID,
            "--name",
            "Shop",
            "--auth-origin",
            ORIGIN,
            "--allowed-identifier",
            "both",
            "--settings",
            &settings,
        ],
    )
    .await;
    assert!(ok, "{out}{err}");
    let created: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(created["app_id"], APP_ID);
    PassageApp {
        app_id: APP_ID.into(),
        key: created["api_key"].as_str().unwrap().into(),
    }
}

async fn import(app: &TestApp, file: &Path) -> Value {
    let (ok, out, err) = keyhaven(
        app,
        &["import", "passage", "--app", APP_ID, file.to_str().unwrap()],
    )
    .await;
    assert!(ok, "{out}{err}");
    assert!(err.contains("records"), "progress on stderr: {err}");
    serde_json::from_str(&out).unwrap()
}

async fn user(app: &TestApp, p: &PassageApp, id: &str) -> (u16, Value) {
    let (status, body) = call(
        app,
        Method::GET,
        &p.app_id,
        &format!("/users/{id}"),
        Some(&p.key),
        None,
    )
    .await;
    (status.as_u16(), body["user"].clone())
}

async fn an_export_imported_elsewhere_logs_in_with_the_same_passkeys(b: Backend) {
    // The old server: two people with passkeys, one of them with a second device.
    let before = TestApp::spawn(b).await;
    let p = old_app(&before).await;
    let mut browser = SoftAuthenticator::new(ORIGIN).unwrap();
    let (ann, _) = register(&before, &p, &mut browser, "ann@example.com").await;
    let mut phone = SoftAuthenticator::new(ORIGIN).unwrap();
    let (ben, _) = register(&before, &p, &mut phone, "ben@example.com").await;
    let (status, _) = log_in(&before, &p, &mut browser, "ann@example.com").await;
    assert_eq!(status, 200);

    let file = before.config.data_dir.join("export.jsonl");
    let (ok, out, err) = keyhaven(
        &before,
        &["export", "--app", APP_ID, file.to_str().unwrap()],
    )
    .await;
    assert!(ok, "{out}{err}");
    let summary: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (summary["users"].as_u64(), summary["passkeys"].as_u64()),
        (Some(2), Some(2))
    );
    let exported = std::fs::read_to_string(&file).unwrap();
    assert!(
        !exported.contains("credential"),
        "the export holds public keys only"
    );

    // The new server: a fresh database, the same app id.
    let after = TestApp::spawn(b).await;
    let p = old_app(&after).await;
    let copy = after.config.data_dir.join("import.jsonl");
    std::fs::write(&copy, &exported).unwrap();
    let report = import(&after, &copy).await;
    assert_eq!(report["created"], 2, "{report}");
    assert_eq!(report["passkeys_created"], 2, "{report}");
    assert_eq!(report["skipped"], json!([]), "{report}");

    // Both log in with what their authenticators hold: no new registration.
    for (who, browser, identifier) in [
        (&ann, &mut browser, "ann@example.com"),
        (&ben, &mut phone, ""),
    ] {
        let (status, body) = log_in(&after, &p, browser, identifier).await;
        assert_eq!(status, 200, "{body}");
        let claims = verify(
            &after,
            &p.app_id,
            body["auth_result"]["auth_token"].as_str().unwrap(),
        )
        .await;
        assert_eq!(claims["sub"], who.as_str());
    }
    let (_, imported) = user(&after, &p, &ann).await;
    assert_eq!(imported["email"], "ann@example.com");
    assert!(imported["login_count"].as_i64().unwrap() >= 2, "{imported}");

    // Again: nothing changes; the logins since (counters, login counts) stay.
    let report = import(&after, &copy).await;
    assert_eq!(report["unchanged"], 2, "{report}");
    assert!(
        user(&after, &p, &ann).await.1["login_count"]
            .as_i64()
            .unwrap()
            >= 2
    );
    let (status, _) = log_in(&after, &p, &mut browser, "ann@example.com").await;
    assert_eq!(status, 200);

    // And back out: the same credentials and keys.
    let (ok, again, _) = keyhaven(&after, &["export", "--app", APP_ID]).await;
    assert!(ok);
    let keys = |text: &str| -> Vec<(String, String)> {
        let mut keys: Vec<(String, String)> = text
            .lines()
            .flat_map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["webauthn_devices"]
                    .as_array()
                    .unwrap()
                    .clone()
            })
            .map(|d| {
                (
                    d["cred_id"].as_str().unwrap().into(),
                    d["public_key"].as_str().unwrap().into(),
                )
            })
            .collect();
        keys.sort();
        keys
    };
    assert_eq!(keys(&again), keys(&exported));
}

async fn keys_made_outside_keyhaven_log_in(b: Backend) {
    let app = TestApp::spawn(b).await;
    let p = old_app(&app).await;
    let mut p256 = ExternalKey::new(KeyKind::P256, b"user_p256");
    let mut ed25519 = ExternalKey::new(KeyKind::Ed25519, b"user_ed25519");
    let records = [
        json!({"id": "user_p256", "email": "pia@example.com", "email_verified": true,
               "status": "active", "created_at": "2024-03-01T10:00:00Z", "login_count": 7,
               "last_login_at": "0001-01-01T00:00:00Z", "user_metadata": {"plan": "pro"},
               "webauthn_devices": [{"cred_id": p256.cred_id(), "public_key": p256.cose_public_key(),
                 "sign_count": 41, "transports": ["internal", "hybrid"], "friendly_name": "Pia's Mac",
                 "backup_eligible": true, "backup_state": true}]}),
        json!({"id": "user_ed25519", "phone": "+4915123456789",
               "webauthn_devices": [{"cred_id": padded(&ed25519.cred_id()), "public_key": ed25519.spki_pem(),
                 "user_handle": keyhaven::crypto::base64url(b"user_ed25519")}]}),
    ];
    let file = app.config.data_dir.join("passage.json");
    std::fs::write(&file, Value::from(records.to_vec()).to_string()).unwrap();
    let report = import(&app, &file).await;
    assert_eq!(
        (
            report["created"].as_u64(),
            report["passkeys_created"].as_u64()
        ),
        (Some(2), Some(2)),
        "{report}"
    );

    // With an identifier: the P-256 key; its counter goes on from the export's.
    p256.set_counter(41);
    for (key, start, user_id) in [
        (
            &mut p256,
            json!({"identifier": "pia@example.com"}),
            "user_p256",
        ),
        (&mut ed25519, json!({}), "user_ed25519"),
    ] {
        let (status, started) = call(
            &app,
            Method::POST,
            APP_ID,
            "/login/webauthn/start",
            None,
            Some(start),
        )
        .await;
        assert_eq!(status, 200, "{started}");
        let response = key.assert(&started["handshake"]["challenge"], ORIGIN);
        let finish = json!({"handshake_id": started["handshake"]["id"], "handshake_response": response, "user_id": ""});
        let (status, body) = call(
            &app,
            Method::POST,
            APP_ID,
            "/login/webauthn/finish",
            None,
            Some(finish),
        )
        .await;
        assert_eq!(status, 200, "{user_id}: {body}");
        let claims = verify(
            &app,
            APP_ID,
            body["auth_result"]["auth_token"].as_str().unwrap(),
        )
        .await;
        assert_eq!(claims["sub"], user_id);
    }

    let (_, pia) = user(&app, &p, "user_p256").await;
    assert_eq!(pia["email_verified"], true);
    assert_eq!(pia["user_metadata"]["plan"], "pro");
    assert_eq!(pia["created_at"], "2024-03-01T10:00:00.000Z");
    assert_eq!(pia["login_count"], 8);
    let device = &pia["webauthn_devices"][0];
    assert_eq!(device["friendly_name"], "Pia's Mac");
}

/// Padded base64url, as some exports write credential ids.
fn padded(unpadded: &str) -> String {
    let pad = (4 - unpadded.len() % 4) % 4;
    format!("{unpadded}{}", "=".repeat(pad))
}

async fn malformed_records_are_reported_and_leave_nothing_behind(b: Backend) {
    let app = TestApp::spawn(b).await;
    let p = old_app(&app).await;
    let key = ExternalKey::new(KeyKind::P256, b"good");
    let device = |public_key: String| json!([{"cred_id": keyhaven::crypto::base64url(b"cred-x"), "public_key": public_key}]);
    // A P-384 key: a key, but not one a passkey holds.
    let p384 = openssl::ec::EcKey::generate(
        &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::SECP384R1).unwrap(),
    )
    .unwrap();
    let p384 = String::from_utf8(p384.public_key_to_pem().unwrap()).unwrap();
    let cose = key.cose_public_key();
    let lines = [
        json!({"id": "good", "email": "good@example.com", "favourite_colour": "red",
               "user_metadata": {"plan": "pro", "seats": "many", "unknown": 1},
               "webauthn_devices": [{"cred_id": key.cred_id(), "public_key": cose}]}).to_string(),
        json!({"id": "bad_email", "email": "not-an-email"}).to_string(),
        json!({"id": "dup_email", "email": "good@example.com"}).to_string(),
        json!({"id": "truncated", "email": "t@example.com", "webauthn_devices": device(cose[..cose.len() / 2].to_string())}).to_string(),
        json!({"id": "wrong_type", "email": "w@example.com", "webauthn_devices": device(p384.to_string())}).to_string(),
        json!({"id": "bad/id", "email": "i@example.com"}).to_string(),
        json!({"id": "bad_status", "email": "s@example.com", "status": "banned"}).to_string(),
        "{\"id\": \"cut".to_string(),
        json!({"id": "good", "email": "again@example.com"}).to_string(),
    ];
    let file = app.config.data_dir.join("users.jsonl");
    std::fs::write(&file, lines.join("\n")).unwrap();
    let report = import(&app, &file).await;
    assert_eq!(
        (report["read"].as_u64(), report["created"].as_u64()),
        (Some(9), Some(1)),
        "{report}"
    );
    let skipped: Vec<(u64, String)> = report["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["at"].as_u64().unwrap(),
                s["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let lines_skipped: Vec<u64> = skipped.iter().map(|(at, _)| *at).collect();
    assert_eq!(lines_skipped, [2, 3, 4, 5, 6, 7, 8, 9], "{report}");
    for (at, word) in [
        (2, "email"),
        (3, "duplicate email"),
        (4, "public_key"),
        (5, "P-256"),
        (6, "id"),
        (7, "status"),
        (8, "unreadable"),
        (9, "duplicate id"),
    ] {
        let reason = &skipped.iter().find(|(a, _)| *a == at).unwrap().1;
        assert!(reason.contains(word), "line {at}: {reason}");
    }
    let warnings = report["warnings"].to_string();
    for word in [
        "favourite_colour",
        "user_metadata.seats",
        "user_metadata.unknown",
    ] {
        assert!(warnings.contains(word), "{word}: {warnings}");
    }

    // Skipped records left no user and no passkey behind; the good one holds what fit.
    for id in [
        "bad_email",
        "dup_email",
        "truncated",
        "wrong_type",
        "bad_status",
    ] {
        assert_eq!(user(&app, &p, id).await.0, 404, "{id}");
    }
    let (_, good) = user(&app, &p, "good").await;
    assert_eq!(good["user_metadata"], json!({"plan": "pro"}));
    assert_eq!(good["webauthn_devices"].as_array().unwrap().len(), 1);
}

async fn a_changed_record_updates_and_the_csv_template_imports(b: Backend) {
    let app = TestApp::spawn(b).await;
    let p = old_app(&app).await;
    let csv = app.config.data_dir.join("template.csv");
    std::fs::write(
        &csv,
        "email,phone,plan,seats\ncy@example.com,,team,5\n,+4915123456780,,\n",
    )
    .unwrap();
    let report = import(&app, &csv).await;
    assert_eq!(report["created"], 2, "{report}");
    let (_, list) = call(
        &app,
        Method::GET,
        APP_ID,
        "/users?identifier=cy@example.com",
        Some(&p.key),
        None,
    )
    .await;
    let cy = &list["users"][0];
    assert_eq!(
        cy["user_metadata"],
        json!({"plan": "team", "seats": 5}),
        "{list}"
    );

    let file = app.config.data_dir.join("one.json");
    let record = |verified: bool| json!([{"id": "dee", "email": "dee@example.com", "email_verified": verified}]);
    std::fs::write(&file, record(false).to_string()).unwrap();
    assert_eq!(import(&app, &file).await["created"], 1);
    assert_eq!(import(&app, &file).await["unchanged"], 1);
    std::fs::write(&file, record(true).to_string()).unwrap();
    assert_eq!(import(&app, &file).await["updated"], 1);
    assert_eq!(user(&app, &p, "dee").await.1["email_verified"], true);

    // Another id with dee's email: skipped, dee untouched.
    let thief = json!([{"id": "not_dee", "email": "dee@example.com"}, {"id": "eve", "email": "eve@example.com"}]);
    std::fs::write(&file, thief.to_string()).unwrap();
    let report = import(&app, &file).await;
    assert_eq!(report["created"], 1, "{report}");
    assert_eq!(report["skipped"][0]["id"], "not_dee", "{report}");
    assert!(report["skipped"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("another user"));
    assert_eq!(user(&app, &p, "not_dee").await.0, 404);
}
