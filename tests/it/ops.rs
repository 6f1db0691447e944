//! Operator endpoints.

use crate::{
    both_backends,
    harness::{code_in, Backend, TestApp},
};

both_backends!(health_readiness_metrics_openapi);

async fn health_readiness_metrics_openapi(b: Backend) {
    let app = TestApp::spawn(b).await;
    let (status, body) = app.send(app.http.get(app.url("/healthz"))).await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "ok");
    let (status, body) = app.send(app.http.get(app.url("/readyz"))).await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "ready");

    let (otp, text) = app.send_otp("via=SMS", "+4915123456789").await;
    let id = otp["otpId"].as_str().unwrap();
    app.post(&format!(
        "/2fa/v1/otp/{id}/check?otpCode={}",
        code_in(&text)
    ))
    .await;
    crate::tyntec_otp::wait_for_events(&app, id, |e| e.iter().any(|e| e["event"] == "SENT")).await;

    let metrics = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for needle in [
        "keyhaven_otps_total{outcome=\"created\"} 1",
        "keyhaven_otps_total{outcome=\"verified\"} 1",
        "keyhaven_deliveries_total{provider=\"webhook\",channel=\"sms\",result=\"sent\"} 1",
        "route=\"/2fa/v1/otp/{otp_id}/check\",status=\"202\"",
        "keyhaven_http_request_duration_seconds_bucket",
        "keyhaven_outbox_pending 0",
    ] {
        assert!(metrics.contains(needle), "missing {needle} in\n{metrics}");
    }
    // The raw path with its id never becomes a label.
    assert!(!metrics.contains(id));

    let (status, spec) = app.send(app.http.get(app.url("/openapi.json"))).await;
    assert_eq!(status, 200);
    assert!(
        spec["paths"]["/2fa/v1/otp/{otpId}/check"]["post"].is_object(),
        "{spec}"
    );
}
