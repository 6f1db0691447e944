//! Tests of the recorder, the driver and the message receiver.

use std::time::Instant;

use super::*;

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

#[test]
fn recorder_percentiles() {
    let mut step = StepRecorder::new().unwrap();
    for v in 1..=1000 {
        step.record(ms(v));
    }
    step.error("timeout");
    step.error("timeout");
    step.error(RATE_LIMITED);
    let close = |d: Option<Duration>, want_ms: f64| {
        let got = d.unwrap().as_secs_f64() * 1e3;
        assert!(
            (got - want_ms).abs() <= want_ms * 0.002,
            "{got} vs {want_ms}"
        );
    };
    assert_eq!(step.count(), 1000);
    assert_eq!(step.errors(), 3);
    assert_eq!(step.errors_of_kind("timeout"), 2);
    assert_eq!(step.errors_of_kind(RATE_LIMITED), 1);
    close(step.quantile(0.5), 500.0);
    close(step.quantile(0.9), 900.0);
    close(step.quantile(0.99), 990.0);
    close(step.max(), 1000.0);
    close(step.mean(), 500.5);
}

#[test]
fn recorder_keeps_microseconds_and_clamps() {
    let mut step = StepRecorder::new().unwrap();
    step.record(Duration::from_micros(250));
    assert_eq!(step.quantile(0.5), Some(Duration::from_micros(250)));
    step.record(Duration::from_secs(100_000));
    assert!(step.max().unwrap() >= Duration::from_secs(3600));
    assert_eq!(step.count(), 2);
}

#[test]
fn empty_step_reports_nothing() {
    let step = StepRecorder::new().unwrap();
    assert_eq!(step.quantile(0.5), None);
    assert_eq!(step.max(), None);
    let report = StepReport::from_recorder("x", &step);
    assert_eq!(report.p99_ms, None);
    assert_eq!(report.count, 0);
}

#[test]
fn recorder_merges_and_keeps_order() {
    let mut a = Recorder::new(&["send", "check"]).unwrap();
    let mut b = Recorder::new(&["check"]).unwrap();
    a.record("send", ms(10)).unwrap();
    b.record("check", ms(20)).unwrap();
    b.error("extra", "timeout").unwrap();
    b.error("check", RATE_LIMITED).unwrap();
    a.merge(&b).unwrap();
    let names: Vec<_> = a.steps().map(|(n, _)| n).collect();
    assert_eq!(names, ["send", "check", "extra"]);
    assert_eq!(a.step("check").unwrap().count(), 1);
    assert_eq!(a.step("extra").unwrap().errors(), 1);
    assert_eq!(a.errors_of_kind(RATE_LIMITED), 1);
}

#[tokio::test]
async fn driver_discards_warmup_and_stops() {
    use std::sync::atomic::{AtomicU64, Ordering};
    let calls = Arc::new(AtomicU64::new(0));
    let counted = Arc::clone(&calls);
    let plan = LoadPlan::new(3, ms(100), ms(300));
    let started = Instant::now();
    let outcome = drive(&plan, &["work"], move |_| {
        let counted = Arc::clone(&counted);
        async move {
            tokio::time::sleep(ms(10)).await;
            let n = counted.fetch_add(1, Ordering::Relaxed);
            let mut it = Iteration::new();
            it.ok("work", ms(10));
            if n % 2 == 0 {
                it.complete();
            } else {
                it.fail("check", RATE_LIMITED);
            }
            it
        }
    })
    .await
    .unwrap();
    let total = calls.load(Ordering::Relaxed);
    let measured = outcome.measured.step("work").unwrap().count();
    let warmup = outcome.warmup.step("work").unwrap().count();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(warmup > 0 && measured > 0);
    assert_eq!(measured + warmup, total);
    assert!(outcome.completed > 0 && outcome.completed <= measured);
    assert!(outcome.elapsed >= ms(300) && outcome.elapsed < ms(600));
    assert!(outcome.throughput() > 0.0);

    let report = Report::from_outcome("test", "http://x", &plan, &outcome, 1);
    assert_eq!(
        report.rate_limited,
        outcome.measured.errors_of_kind(RATE_LIMITED)
            + outcome.warmup.errors_of_kind(RATE_LIMITED)
            + 1
    );
    assert!(report.notes[0].contains("KEYHAVEN_RATE_LIMIT_CALLS"));
    let table = report.to_string();
    assert!(table.contains("work") && table.contains("check") && table.contains("p99 ms"));
    assert!(table.contains("http 429 x"));
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["steps"][0]["name"], "work");
    assert_eq!(json["round_trips"], outcome.completed);
}

#[tokio::test]
async fn driver_drops_iterations_past_grace() {
    let mut plan = LoadPlan::new(2, Duration::ZERO, ms(50));
    plan.grace = ms(50);
    let started = Instant::now();
    let outcome = drive(&plan, &["slow"], |_| async {
        tokio::time::sleep(Duration::from_secs(30)).await;
        Iteration::new()
    })
    .await
    .unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(outcome.completed, 0);
    assert_eq!(outcome.measured.step("slow").unwrap().count(), 0);
}

async fn post(receiver: &Receiver, path: &str, body: serde_json::Value) -> reqwest::StatusCode {
    reqwest::Client::new()
        .post(format!("http://{}{path}", receiver.addr()))
        .json(&body)
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn receiver_keeps_early_arrivals() {
    let receiver = start_receiver("127.0.0.1:0").await.unwrap();
    let body = serde_json::json!({
        "channel": "sms", "to": "+4915112345678", "text": "code 123456",
        "sender": "Keyhaven", "language": "en"
    });
    assert_eq!(post(&receiver, "/", body.clone()).await, 200);
    let mut second = body.clone();
    second["text"] = "code 654321".into();
    assert_eq!(post(&receiver, "/any/path", second).await, 200);
    assert_eq!(receiver.received(), 2);

    let text = receiver.wait_for("+4915112345678", ms(10)).await.unwrap();
    assert_eq!(text, "code 123456");
    let message = receiver
        .wait_for_message("+4915112345678", ms(10))
        .await
        .unwrap();
    assert_eq!(message.text, "code 654321");
    assert_eq!(message.channel.as_deref(), Some("sms"));
    assert!(receiver.wait_for("+4915112345678", ms(20)).await.is_err());
    receiver.shutdown().await;
}

#[tokio::test]
async fn receiver_wakes_a_waiter() {
    let receiver = Arc::new(start_receiver("127.0.0.1:0").await.unwrap());
    let waiting = {
        let receiver = Arc::clone(&receiver);
        tokio::spawn(async move {
            receiver
                .wait_for_message("+4915712345678", Duration::from_secs(5))
                .await
        })
    };
    tokio::time::sleep(ms(50)).await;
    let other = serde_json::json!({"channel": "sms", "to": "+4916012345678", "text": "x"});
    assert_eq!(post(&receiver, "/", other).await, 200);
    let mine = serde_json::json!({"channel": "sms", "to": "+4915712345678", "text": "code 1"});
    assert_eq!(post(&receiver, "/hook", mine).await, 200);
    let message = waiting.await.unwrap().unwrap();
    assert_eq!(message.text, "code 1");
    assert!(message.arrived.elapsed() < Duration::from_secs(5));
    // The message to the other number stayed for whoever asks later.
    assert_eq!(
        receiver.wait_for("+4916012345678", ms(10)).await.unwrap(),
        "x"
    );
}

#[tokio::test]
async fn receiver_rejects_bad_bodies_and_stops() {
    let receiver = start_receiver("127.0.0.1:0").await.unwrap();
    let addr = receiver.addr();
    assert_eq!(
        post(&receiver, "/", serde_json::json!({"text": "no recipient"})).await,
        400
    );
    assert_eq!(receiver.received(), 0);
    receiver.shutdown().await;
    let after = reqwest::Client::new()
        .post(format!("http://{addr}/"))
        .json(&serde_json::json!({"to": "+1", "text": "x"}))
        .send()
        .await;
    assert!(after.is_err());
}

#[tokio::test]
async fn receiver_stops_on_drop() {
    let receiver = start_receiver("127.0.0.1:0").await.unwrap();
    let addr = receiver.addr();
    drop(receiver);
    tokio::time::sleep(ms(50)).await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}
