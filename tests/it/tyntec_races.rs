//! Concurrent checks settle in the database: one success, bounded attempts, also when the
//! checks are split across two nodes.

use std::time::Duration;

use futures::future::join_all;
use serde_json::json;

use crate::{
    both_backends,
    harness::{code_in, urlencode, Backend, TestApp},
};

both_backends!(
    hundred_concurrent_correct_checks,
    fifty_concurrent_wrong_guesses,
    two_nodes_count_attempts_exactly,
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

/// Each OTP gets more wrong checks than it has attempts plus its right code, all at once and
/// split across two nodes: the database must count every attempt once, whichever node took it.
async fn two_nodes_count_attempts_exactly(b: Backend) {
    const OTPS: usize = 20;
    const WRONG: usize = 9;
    const MAX_ATTEMPTS: usize = 4;
    let app = TestApp::spawn(b).await;
    // Set before the second node starts, so neither node can hold the old settings.
    let (status, settings) = app
        .post_json(
            "/2fa/v1/application/default",
            &json!({"attempts": MAX_ATTEMPTS}),
        )
        .await;
    assert_eq!(status, 200, "{settings}");
    assert_eq!(settings["attempts"], MAX_ATTEMPTS);
    let second = app.another_node().await;
    let bases = [app.base.as_str(), second.base.as_str()];
    let post = |base: &str, path: String| {
        let req = app
            .http
            .post(format!("{base}{path}"))
            .header("apikey", &app.key);
        app.send(req)
    };

    // Distinct numbers: the per-recipient failure budget must not answer 429 here.
    let numbers: Vec<String> = (0..OTPS).map(|i| format!("+491512345{i:04}")).collect();
    let sent = join_all(numbers.iter().enumerate().map(|(i, number)| {
        post(
            bases[i % 2],
            format!("/2fa/v1/otp?number={}&via=SMS", urlencode(number)),
        )
    }))
    .await;
    let mut otps = Vec::new();
    for ((status, otp), number) in sent.into_iter().zip(&numbers) {
        assert_eq!(status, 200, "{otp}");
        assert_eq!(otp["number"], number.as_str());
        let message = app.receiver.next_for(number).await;
        let code = code_in(message["text"].as_str().unwrap());
        otps.push((otp["otpId"].as_str().unwrap().to_owned(), code));
    }

    // Every OTP's checks at once; the right code's place in the burst varies per OTP, so
    // some OTPs are verified before their attempts run out and others are locked first.
    let answers = join_all(otps.iter().enumerate().map(|(i, (id, code))| {
        let wrong = wrong_code(code);
        let right_at = i % (WRONG + 1);
        let checks = (0..=WRONG).map(move |j| {
            let guess = if j == right_at {
                code.as_str()
            } else {
                wrong.as_str()
            };
            let path = format!("/2fa/v1/otp/{id}/check?otpCode={guess}");
            (j == right_at, post(bases[(i + j) % 2], path))
        });
        join_all(checks.map(|(right, answer)| async move { (right, answer.await) }))
    }))
    .await;

    for ((id, _), answers) in otps.iter().zip(&answers) {
        let count = |status: u16| answers.iter().filter(|(_, (s, _))| *s == status).count();
        let (verified, wrong, locked, gone) = (count(202), count(401), count(403), count(410));
        let statuses: Vec<_> = answers.iter().map(|(r, (s, _))| (*r, s.as_u16())).collect();
        assert_eq!(
            verified + wrong + locked + gone,
            WRONG + 1,
            "only 202, 401, 403 and 410 answers: {statuses:?}"
        );
        // Only the right code may be answered 202, only wrong ones 401 or 403.
        for (right, (status, body)) in answers {
            match status.as_u16() {
                202 => assert!(*right, "a wrong code was accepted: {body}"),
                401 | 403 => assert!(!*right, "the right code was refused: {body}"),
                _ => {}
            }
        }
        let counted = verified + wrong + locked;
        if verified == 1 {
            assert_eq!(locked, 0, "{statuses:?}");
            assert!(counted <= MAX_ATTEMPTS, "{statuses:?}");
        } else {
            // The attempts ran out first: the last wrong one locked it, the right one came late.
            assert_eq!((verified, locked), (0, 1), "{statuses:?}");
            assert_eq!(counted, MAX_ATTEMPTS, "{statuses:?}");
        }
        // Both nodes read back what the answers say.
        for base in bases {
            let url = format!("{base}/2fa/v1/otp/{id}");
            let (status, otp) = app.send(app.http.get(url).header("apikey", &app.key)).await;
            assert_eq!(status, 200, "{otp}");
            assert_eq!(otp["attemptCount"], counted, "{otp} after {statuses:?}");
            let expected = if verified == 1 {
                "VERIFIED"
            } else {
                "TOO_MANY_ATTEMPTS"
            };
            assert_eq!(otp["otpStatus"], expected, "{otp} after {statuses:?}");
        }
    }
    let verified = answers
        .iter()
        .filter(|a| a.iter().any(|(_, (s, _))| *s == 202))
        .count();
    assert!(verified > 0, "no right code was taken");

    // Both nodes' delivery workers poll the shared outbox: give them time to (wrongly) send
    // anything twice.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(app.receiver.pending(), 0, "an SMS was sent twice");
    second.stop().await;
}

/// A code of the same length that differs from `code` in its first character.
fn wrong_code(code: &str) -> String {
    let first = if code.starts_with('0') { '1' } else { '0' };
    code.chars().skip(1).fold(first.to_string(), |mut s, c| {
        s.push(c);
        s
    })
}
