//! Concurrent checks settle in the database: one success, bounded attempts.

use futures::future::join_all;

use crate::{
    both_backends,
    harness::{code_in, Backend, TestApp},
};

both_backends!(
    hundred_concurrent_correct_checks,
    fifty_concurrent_wrong_guesses
);

async fn hundred_concurrent_correct_checks(b: Backend) {
    let app = TestApp::spawn(b).await;
    let (otp, text) = app.send_otp("via=SMS", "+4915123456789").await;
    let id = otp["otpId"].as_str().unwrap();
    let code = code_in(&text);
    let path = format!("/2fa/v1/otp/{id}/check?otpCode={code}");
    let results = join_all((0..100).map(|_| app.post(&path))).await;
    let ok = results.iter().filter(|(s, _)| *s == 202).count();
    let gone = results.iter().filter(|(s, _)| *s == 410).count();
    assert_eq!(ok, 1, "exactly one check succeeds");
    assert_eq!(
        gone,
        99,
        "{:?}",
        results.iter().map(|r| r.0).collect::<Vec<_>>()
    );
    let (_, after) = app.get(&format!("/2fa/v1/otp/{id}")).await;
    assert_eq!(after["otpStatus"], "VERIFIED");
    assert_eq!(after["attemptCount"], 1, "410 answers count no attempt");
}

async fn fifty_concurrent_wrong_guesses(b: Backend) {
    let app = TestApp::spawn(b).await;
    let (otp, text) = app.send_otp("via=SMS", "+4915123456789").await;
    let id = otp["otpId"].as_str().unwrap();
    let code = code_in(&text);
    let wrong = if code == "1234" { "4321" } else { "1234" };
    let path = format!("/2fa/v1/otp/{id}/check?otpCode={wrong}");
    let results = join_all((0..50).map(|_| app.post(&path))).await;
    let count = |status: u16| results.iter().filter(|(s, _)| s.as_u16() == status).count();
    // Default application: 3 attempts → two 401, one 403 (the last), the rest 410.
    assert_eq!(count(401), 2);
    assert_eq!(count(403), 1);
    assert_eq!(count(410), 47);
    let (_, after) = app.get(&format!("/2fa/v1/otp/{id}")).await;
    assert_eq!(after["attemptCount"], 3);
    assert_eq!(after["otpStatus"], "TOO_MANY_ATTEMPTS");
    let (status, _) = app
        .post(&format!("/2fa/v1/otp/{id}/check?otpCode={code}"))
        .await;
    assert_eq!(
        status, 410,
        "the code is dead after the attempts are used up"
    );
}
