//! 2FA applications: CRUD, defaults, the default application's rules, templates.

use serde_json::json;

use crate::{
    both_backends,
    harness::{Backend, TestApp},
};

both_backends!(
    default_application_exists_with_defaults,
    create_edit_delete_application,
    default_name_is_reserved_and_default_cannot_be_deleted,
    invalid_settings_are_rejected,
    concurrent_template_additions_all_land,
);

async fn default_application_exists_with_defaults(b: Backend) {
    let app = TestApp::spawn(b).await;
    let (status, apps) = app.get("/2fa/v1/application/").await;
    assert_eq!(status, 200);
    let apps = apps.as_array().unwrap();
    assert_eq!(apps.len(), 1);
    let d = &apps[0];
    assert_eq!(d["name"], "default");
    assert_eq!(d["default"], true);
    assert_eq!(d["pinLength"], 4);
    assert_eq!(d["alphanumeric"], false);
    assert_eq!(d["attempts"], 3);
    assert_eq!(d["expire"], 300);
    assert_eq!(d["sender"], "VERIFY");
    assert_eq!(d["accountId"], app.account_id.as_str());
    assert!(d["template"]["en"].as_str().unwrap().contains("{{OTP}}"));
    // Addressable by its id and as `default`.
    let id = d["applicationId"].as_str().unwrap();
    let (_, by_id) = app.get(&format!("/2fa/v1/application/{id}")).await;
    let (_, by_alias) = app.get("/2fa/v1/application/default").await;
    assert_eq!(by_id, by_alias);
    // Sending with no applicationId uses it.
    let (otp, _) = app.send_otp("via=SMS", "+4915123456789").await;
    assert_eq!(otp["applicationId"], id);
}

async fn create_edit_delete_application(b: Backend) {
    let app = TestApp::spawn(b).await;
    let (status, created) = app
        .post_json(
            "/2fa/v1/application/",
            &json!({"name": "shop", "pinLength": 6, "attempts": 5, "expire": 120,
                    "sender": "Shop", "caller": "+4930123456",
                    "template": {"en": "Shop code {{OTP}}", "de-voice": "Code {{OTP}}"}}),
        )
        .await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(created["name"], "shop");
    assert_eq!(created["default"], false);
    assert_eq!(created["attempts"], 5);
    assert_eq!(created["caller"], "+4930123456");
    assert_eq!(created["template"]["de-voice"], "Code {{OTP}}");
    let id = created["applicationId"].as_str().unwrap();
    let (status, edited) = app
        .post_json(
            &format!("/2fa/v1/application/{id}"),
            &json!({"pinLength": 8}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(edited["pinLength"], 8);
    assert_eq!(edited["attempts"], 5, "fields not given are kept");
    let (otp, text) = app
        .send_otp(&format!("applicationId={id}&via=SMS"), "+4915123456789")
        .await;
    assert_eq!(
        otp["expire"].as_i64().unwrap() - otp["created"].as_i64().unwrap(),
        120_000
    );
    assert_eq!(text.strip_prefix("Shop code ").unwrap().len(), 8);
    let (status, _) = app.delete(&format!("/2fa/v1/application/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(app.get(&format!("/2fa/v1/application/{id}")).await.0, 404);
    let (status, body) = app
        .post(&format!(
            "/2fa/v1/otp?number=%2B4915123456789&applicationId={id}"
        ))
        .await;
    assert_eq!(status, 400, "{body}");
    // The OTP sent before the deletion lives on.
    let otp_id = otp["otpId"].as_str().unwrap();
    assert_eq!(app.get(&format!("/2fa/v1/otp/{otp_id}")).await.0, 200);
}

async fn default_name_is_reserved_and_default_cannot_be_deleted(b: Backend) {
    let app = TestApp::spawn(b).await;
    let (status, body) = app
        .post_json("/2fa/v1/application/", &json!({"name": "default"}))
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["code"], "1017");
    assert_eq!(body["status"], 400);
    let (status, body) = app.delete("/2fa/v1/application/default").await;
    assert_eq!(status, 400, "{body}");
    let (status, edited) = app
        .post_json("/2fa/v1/application/default", &json!({"attempts": 5}))
        .await;
    assert_eq!(status, 200, "the default application can be edited");
    assert_eq!(edited["attempts"], 5);
}

async fn invalid_settings_are_rejected(b: Backend) {
    let app = TestApp::spawn(b).await;
    for body in [
        json!({}),
        json!({"name": ""}),
        json!({"name": "x", "pinLength": 3}),
        json!({"name": "x", "pinLength": 11}),
        json!({"name": "x", "attempts": 0}),
        json!({"name": "x", "expire": 0}),
        json!({"name": "x", "pinLength": "six"}),
        json!({"name": "x", "template": {"english": "{{OTP}}"}}),
        json!({"name": "x", "template": {"en": "no placeholder"}}),
        json!({"name": "x", "sender": "a sender that is far too long"}),
    ] {
        let (status, err) = app.post_json("/2fa/v1/application/", &body).await;
        assert_eq!(status, 400, "{body}: {err}");
        assert_eq!(err["status"], 400);
        assert!(err["message"].as_str().unwrap().len() > 3);
    }
    let (_, apps) = app.get("/2fa/v1/application/").await;
    assert_eq!(apps.as_array().unwrap().len(), 1, "nothing half-created");
}

async fn concurrent_template_additions_all_land(b: Backend) {
    let app = TestApp::spawn(b).await;
    let langs = ["de", "fr", "es", "it", "nl", "pl", "cs", "sv"];
    let bodies: Vec<_> = langs
        .iter()
        .map(|l| json!({"language": l, "template": format!("{l} {{{{OTP}}}}")}))
        .collect();
    let results = futures::future::join_all(
        bodies
            .iter()
            .map(|body| app.post_json("/2fa/v1/application/default/language", body)),
    )
    .await;
    assert!(results.iter().all(|(s, _)| *s == 200));
    let (_, d) = app.get("/2fa/v1/application/default").await;
    for l in langs {
        assert_eq!(d["template"][l], format!("{l} {{{{OTP}}}}"));
    }
}
