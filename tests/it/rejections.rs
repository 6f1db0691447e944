//! Every rejection answers in the JSON shape of the surface it was aimed at: malformed paths
//! and queries, unknown routes, wrong methods, and paths outside every surface.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::{
    both_backends,
    harness::{Backend, TestApp},
    passage::{call, create_app},
};

both_backends!(
    tyntec_rejections_are_tyntec_shaped,
    passage_rejections_are_passage_shaped,
    paths_outside_the_surfaces_answer_json,
);

fn assert_tyntec(status: StatusCode, body: &Value, expected: u16, code: &str) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["status"], expected, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert!(
        body["message"].is_string() && body["timestamp"].is_string(),
        "{body}"
    );
}

fn assert_passage(status: StatusCode, body: &Value, expected: u16, code: &str) {
    assert_eq!(status, expected, "{body}");
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["code", "error"], "{body}");
    assert_eq!(body["code"], code, "{body}");
}

async fn tyntec_rejections_are_tyntec_shaped(b: Backend) {
    let app = TestApp::spawn(b).await;
    // Not UTF-8 once decoded: axum's own rejection would be plain text.
    let (status, body) = app.get("/2fa/v1/otp/%FF%FE").await;
    assert_tyntec(status, &body, 400, "invalid_parameter");
    let (status, body) = app.get("/2fa/v1/application/%FF%FE").await;
    assert_tyntec(status, &body, 400, "invalid_parameter");
    let (status, body) = app.get("/2fa/v1/nowhere").await;
    assert_tyntec(status, &body, 404, "not_found");
    let (status, body) = app.send(app.http.put(app.url("/2fa/v1/otp"))).await;
    assert_tyntec(status, &body, 405, "method_not_allowed");
}

async fn passage_rejections_are_passage_shaped(b: Backend) {
    let app = TestApp::spawn(b).await;
    let p = create_app(&app, |_| {}).await;
    let key = Some(p.key.as_str());
    let (status, body) = call(&app, Method::GET, &p.app_id, "/users/%FF%FE", key, None).await;
    assert_passage(status, &body, 400, "invalid_request");
    let (status, body) = call(&app, Method::GET, &p.app_id, "/users?page=%FF", key, None).await;
    assert_passage(status, &body, 400, "invalid_request");
    let (status, body) = call(&app, Method::GET, &p.app_id, "/users?page=x", key, None).await;
    assert_passage(status, &body, 400, "invalid_request");
    let (status, body) = call(&app, Method::DELETE, &p.app_id, "/tokens", None, None).await;
    assert_passage(status, &body, 400, "invalid_request");
    let (status, body) = call(&app, Method::GET, &p.app_id, "/nowhere", None, None).await;
    assert_passage(status, &body, 404, "route_not_found");
    let (status, body) = call(&app, Method::PUT, &p.app_id, "/tokens", None, None).await;
    assert_passage(status, &body, 405, "invalid_request");
    let (status, body) = app.send(app.http.get(app.url("/v1/nowhere"))).await;
    assert_passage(status, &body, 404, "route_not_found");
    // A body must say it is JSON, as on the tyntec surface; an empty one needs no type.
    let url = app.url(&format!("/v1/apps/{}/login/magic-link", p.app_id));
    for content_type in ["text/plain", "application/x-www-form-urlencoded"] {
        let request = app
            .http
            .post(&url)
            .header("content-type", content_type)
            .body(r#"{"identifier":"ann@example.com"}"#);
        let (status, body) = app.send(request).await;
        assert_passage(status, &body, 415, "invalid_request");
    }
    let request = app
        .http
        .post(&url)
        .header("content-type", "application/vnd.api+json")
        .body(r#"{"identifier":"nobody@example.com"}"#);
    let (status, body) = app.send(request).await;
    assert_passage(status, &body, 404, "user_not_found");
    let huge = serde_json::json!({"identifier": "a".repeat(100 * 1024)});
    let request = app.http.post(&url).json(&huge);
    let (status, body) = app.send(request).await;
    assert_passage(status, &body, 413, "invalid_request");
    // The resource decides the code of a 404.
    let (status, body) = call(&app, Method::GET, &p.app_id, "/users/nobody", key, None).await;
    assert_passage(status, &body, 404, "user_not_found");
    let (status, body) = call(&app, Method::GET, "no-such-app", "", None, None).await;
    assert_passage(status, &body, 404, "app_not_found");
    // Signing out with a token that is unknown (or already ended) leaves nothing to end.
    let path = "/tokens?refresh_token=unknown";
    let (status, body) = call(&app, Method::DELETE, &p.app_id, path, None, None).await;
    assert_eq!(status, 200, "{body}");
}

async fn paths_outside_the_surfaces_answer_json(b: Backend) {
    let app = TestApp::spawn(b).await;
    let (status, body) = app.send(app.http.get(app.url("/nowhere"))).await;
    assert_eq!(status, 404);
    assert_eq!(body["code"], "route_not_found", "{body}");
    let (status, body) = app.send(app.http.post(app.url("/healthz"))).await;
    assert_eq!(status, 405);
    assert_eq!(body["code"], "method_not_allowed", "{body}");
}
