//! Tests of the SMTP provider against a local SMTP server.

use super::test_smtp::{Replies, TestSmtpServer};
use super::*;

const FROM: &str = "Keyhaven <no-reply@example.com>";

fn email(to: &str, text: &str) -> Message {
    Message {
        channel: Channel::Email,
        to: to.to_owned(),
        text: text.to_owned(),
        subject: None,
        sender: None,
        language: None,
        reference: "ml-1".to_owned(),
    }
}

#[tokio::test]
async fn sends_plain_text_mail_with_default_subject() {
    let server = TestSmtpServer::start().await;
    let provider = SmtpProvider::from_url(&server.url(), FROM).unwrap();

    let receipt = provider
        .send(&email("user@example.org", "Your code is 123456."))
        .await
        .unwrap();

    assert_eq!(provider.name(), "smtp");
    let mails = server.mails();
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert_eq!(mail.mail_from, "no-reply@example.com");
    assert_eq!(mail.rcpt_to, ["user@example.org"]);
    assert_eq!(mail.auth, None);
    let headers_end = mail.data.find("\r\n\r\n").unwrap();
    let (headers, body) = mail.data.split_at(headers_end);
    assert!(
        headers.contains("From: Keyhaven <no-reply@example.com>\r\n"),
        "{headers}"
    );
    assert!(headers.contains("To: user@example.org\r\n"), "{headers}");
    assert!(
        headers.contains("Subject: Your verification code\r\n"),
        "{headers}"
    );
    assert!(
        headers.contains("Content-Type: text/plain; charset=utf-8\r\n"),
        "{headers}"
    );
    assert_eq!(body.trim(), "Your code is 123456.");
    let id = receipt.provider_message_id.unwrap();
    assert!(
        headers.contains(&format!("Message-ID: <{id}>")),
        "{headers}"
    );
}

#[tokio::test]
async fn uses_message_subject_for_each_mail() {
    let server = TestSmtpServer::start().await;
    let provider = SmtpProvider::from_url(&server.url(), "no-reply@example.com").unwrap();

    for i in 0..3 {
        let message = Message {
            subject: Some(format!("Sign in link {i}")),
            ..email(
                &format!("Name <user{i}@example.org>"),
                "https://example.com/x?t=1",
            )
        };
        provider.send(&message).await.unwrap();
    }

    let mails = server.mails();
    assert_eq!(mails.len(), 3);
    for (i, mail) in mails.iter().enumerate() {
        assert_eq!(mail.rcpt_to, [format!("user{i}@example.org")]);
        assert!(mail
            .data
            .contains(&format!("Subject: Sign in link {i}\r\n")));
        assert!(mail.data.contains("From: no-reply@example.com\r\n"));
        assert!(mail.data.contains("https://example.com/x?t=1"));
    }
}

#[tokio::test]
async fn authenticates_with_percent_decoded_userinfo() {
    let server = TestSmtpServer::start().await;
    let url = format!("smtp://us%40er:p%3Ass%20w+rd@{}?tls=none", server.addr());
    let provider = SmtpProvider::from_url(&url, FROM).unwrap();

    provider
        .send(&email("user@example.org", "hi"))
        .await
        .unwrap();

    let mails = server.mails();
    assert_eq!(mails.len(), 1);
    assert_eq!(
        mails[0].auth,
        Some(("us@er".to_owned(), "p:ss w+rd".to_owned()))
    );
}

#[tokio::test]
async fn permanent_rcpt_refusal_is_rejected() {
    let server = TestSmtpServer::start_with(Replies {
        rcpt: "550 5.1.1 No such user".to_owned(),
        ..Replies::default()
    })
    .await;
    let provider = SmtpProvider::from_url(&server.url(), FROM).unwrap();

    let result = provider.send(&email("nobody@example.org", "code 1")).await;

    match result {
        Err(DeliveryError::Rejected(reason)) => {
            assert!(reason.contains("550"), "{reason}");
            assert!(!reason.contains("code 1"), "{reason}");
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
    assert!(server.mails().is_empty());
}

#[tokio::test]
async fn transient_refusal_is_unavailable() {
    let server = TestSmtpServer::start_with(Replies {
        data_end: "451 4.3.0 Try again later".to_owned(),
        ..Replies::default()
    })
    .await;
    let provider = SmtpProvider::from_url(&server.url(), FROM).unwrap();

    let result = provider.send(&email("user@example.org", "code 1")).await;

    assert!(
        matches!(&result, Err(DeliveryError::Unavailable(r)) if r.contains("451")),
        "{result:?}"
    );
    assert!(server.mails().is_empty());
}

#[tokio::test]
async fn closed_port_is_unavailable() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let provider = SmtpProvider::from_url(&format!("smtp://{addr}"), FROM).unwrap();

    let result = provider.send(&email("user@example.org", "x")).await;

    assert!(
        matches!(result, Err(DeliveryError::Unavailable(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn required_starttls_is_not_skipped() {
    // The test server does not offer STARTTLS, so nothing may be sent in plain text: not when
    // STARTTLS is asked for, and not when credentials come without `tls=`, even on this host.
    let server = TestSmtpServer::start().await;
    for url in [
        format!("smtp://{}?tls=starttls", server.addr()),
        format!("smtp://user:s3cret@{}", server.addr()),
    ] {
        let provider = SmtpProvider::from_url(&url, FROM).unwrap();
        let result = provider.send(&email("user@example.org", "x")).await;
        assert!(
            matches!(result, Err(DeliveryError::Unavailable(_))),
            "{url}: {result:?}"
        );
    }
    assert!(server.mails().is_empty());
}

#[tokio::test]
async fn opportunistic_tls_falls_back_to_plain_text() {
    let server = TestSmtpServer::start().await;
    let url = format!("smtp://{}?tls=opportunistic", server.addr());
    let provider = SmtpProvider::from_url(&url, FROM).unwrap();

    provider
        .send(&email("user@example.org", "x"))
        .await
        .unwrap();

    assert_eq!(server.mails().len(), 1);
}

#[tokio::test]
async fn invalid_recipient_is_rejected_without_connecting() {
    let server = TestSmtpServer::start().await;
    let provider = SmtpProvider::from_url(&server.url(), FROM).unwrap();

    for to in ["not an address", "", "a@b@c"] {
        let result = provider.send(&email(to, "x")).await;
        assert!(
            matches!(result, Err(DeliveryError::Rejected(_))),
            "{to}: {result:?}"
        );
    }
    let sms = Message {
        channel: Channel::Sms,
        ..email("user@example.org", "x")
    };
    assert!(matches!(
        provider.send(&sms).await,
        Err(DeliveryError::Rejected(_))
    ));
    assert!(server.mails().is_empty());
}

#[test]
fn parses_url_forms() {
    // A relay elsewhere gets STARTTLS unless plain text is asked for.
    let remote = SmtpProvider::from_url("smtp://mail.local:2525", FROM).unwrap();
    assert_eq!(
        (remote.host.as_str(), remote.port, remote.tls),
        ("mail.local", 2525, TlsMode::StartTls)
    );
    assert_eq!(remote.username, None);
    let remote_default = SmtpProvider::from_url("smtp://mail.local", FROM).unwrap();
    assert_eq!(
        (remote_default.port, remote_default.tls),
        (587, TlsMode::StartTls)
    );
    let plain = SmtpProvider::from_url("smtp://mail.local?tls=none", FROM).unwrap();
    assert_eq!((plain.port, plain.tls), (25, TlsMode::None));
    // A relay on this host without credentials is plain by default; with them it is not.
    for local in ["smtp://localhost", "smtp://127.0.0.1:2525", "smtp://[::1]"] {
        let provider = SmtpProvider::from_url(local, FROM).unwrap();
        assert_eq!(provider.tls, TlsMode::None, "{local}");
    }
    let local_login = SmtpProvider::from_url("smtp://u:p@localhost", FROM).unwrap();
    assert_eq!(local_login.tls, TlsMode::StartTls);

    let starttls = SmtpProvider::from_url("smtp://u:p@mail.local?tls=starttls", FROM).unwrap();
    assert_eq!((starttls.port, starttls.tls), (587, TlsMode::StartTls));
    assert_eq!(starttls.username.as_deref(), Some("u"));

    let opportunistic =
        SmtpProvider::from_url("smtp://mail.local:25?tls=opportunistic", FROM).unwrap();
    assert_eq!(
        (opportunistic.port, opportunistic.tls),
        (25, TlsMode::Opportunistic)
    );

    let implicit = SmtpProvider::from_url("smtps://user:pw@smtp.example.com", FROM).unwrap();
    assert_eq!(
        (implicit.host.as_str(), implicit.port, implicit.tls),
        ("smtp.example.com", 465, TlsMode::Implicit)
    );

    let implicit_port = SmtpProvider::from_url("smtps://smtp.example.com:2465", FROM).unwrap();
    assert_eq!(implicit_port.port, 2465);

    let ipv6 = SmtpProvider::from_url("smtp://[::1]:2525", FROM).unwrap();
    assert_eq!(ipv6.host, "::1");
}

#[test]
fn rejects_bad_urls_and_senders_without_leaking_the_password() {
    for url in [
        "http://u:s3cret@mail.local",
        "smtp://u:s3cret@mail.local?tls=bogus",
        "smtps://u:s3cret@mail.local?tls=starttls",
        "smtp://u:s3cret@",
        "smtp://u:%ZZs3cret@mail.local",
        "not a url s3cret",
    ] {
        let err = SmtpProvider::from_url(url, FROM).unwrap_err();
        assert!(!err.contains("s3cret"), "{url}: {err}");
    }
    for from in ["", "no-at-sign", "Name <broken"] {
        assert!(
            SmtpProvider::from_url("smtp://mail.local", from).is_err(),
            "{from}"
        );
    }
}

#[test]
fn debug_hides_the_password() {
    let provider = SmtpProvider::from_url("smtps://user:s3cret@smtp.example.com", FROM).unwrap();
    let text = format!("{provider:?}");
    assert!(!text.contains("s3cret"), "{text}");
    assert!(text.contains("smtp.example.com"), "{text}");
    assert!(text.contains("***"), "{text}");
}

#[test]
fn percent_decoding() {
    assert_eq!(percent_decode("a%20b+c%2F").unwrap(), "a b+c/");
    assert_eq!(percent_decode("%C3%A4").unwrap(), "ä");
    assert!(percent_decode("%2").is_err());
    assert!(percent_decode("%+1").is_err());
    assert!(percent_decode("%FF").is_err());
}
