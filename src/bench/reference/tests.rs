use super::*;

/// Reference on an ephemeral port, SMS caught by a tiny webhook in the test.
#[tokio::test]
async fn send_check_and_outbox() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("reference.db");
    let (sms_tx, mut sms) = mpsc::unbounded_channel::<Value>();
    let hook = Router::new().fallback(move |Json(body): Json<Value>| async move {
        sms_tx.send(body).unwrap();
        StatusCode::OK
    });
    let hook_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let webhook = format!("http://{}/", hook_listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(hook_listener, hook).await.unwrap() });
    let app = router(&database, webhook, Some("k".into())).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let client = reqwest::Client::new();
    let post = |url: String| client.post(url).header("apiKey", "k");
    let created: Value = post(format!("{base}/2fa/v1/application/"))
        .json(&json!({"name": "t", "template": {"en": "code {{OTP}}"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let application = created["applicationId"].as_str().unwrap();
    let query = [
        ("number", "+4915112345678"),
        ("applicationId", application),
        ("via", "SMS"),
    ];
    let url = format!("{base}/2fa/v1/otp");
    let refused = client.post(&url).query(&query).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);

    let sent = post(url).query(&query).send().await.unwrap();
    assert_eq!(sent.status(), StatusCode::OK);
    let sent: Value = sent.json().await.unwrap();
    assert_eq!(sent["otpStatus"], "ACTIVE");
    let otp_id = sent["otpId"].as_str().unwrap();
    let message = tokio::time::timeout(Duration::from_secs(5), sms.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(message["channel"], "sms");
    assert_eq!(message["to"], "+4915112345678");
    assert_eq!(
        (&message["sender"], &message["language"]),
        (&Value::Null, &json!("en"))
    );
    let code = crate::bench::tyntec::extract_code(message["text"].as_str().unwrap())
        .unwrap()
        .to_owned();
    assert_eq!(code.len(), 6);

    let check = |code: String| {
        post(format!("{base}/2fa/v1/otp/{otp_id}/check"))
            .query(&[("otpCode", code)])
            .send()
    };
    let wrong = if code == "000000" { "111111" } else { "000000" };
    assert_eq!(
        check(wrong.into()).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    let right = check(code.clone()).await.unwrap();
    assert_eq!(right.status(), StatusCode::ACCEPTED);
    assert_eq!(
        right.json::<Value>().await.unwrap()["otpStatus"],
        "VERIFIED"
    );
    assert_ne!(check(code).await.unwrap().status(), StatusCode::ACCEPTED);

    let db = Connection::open(&database).unwrap();
    let (status, attempts): (String, i64) = db
        .query_row("SELECT status, attempts FROM otp", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!((status.as_str(), attempts), ("VERIFIED", 1));
    // The outbox row is marked in a later batch, after the webhook answered.
    let mut marked = false;
    for _ in 0..100 {
        let sent_at: Option<i64> = db
            .query_row("SELECT sent_at FROM outbox", [], |r| r.get(0))
            .unwrap();
        if sent_at.is_some() {
            marked = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(marked, "outbox row never marked sent");
    let deleted = client
        .delete(format!("{base}/2fa/v1/application/{application}"))
        .header("apiKey", "k")
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
}
