//! The real binary: `kill -9` under load loses no acknowledged write, and the log never holds
//! a secret.

use std::{
    process::{Child, Command, Stdio},
    time::Duration,
};

use serde_json::Value;

use crate::{
    both_backends,
    harness::{fresh_database, Backend},
};

both_backends!(kill_nine_loses_no_acknowledged_otp);

#[tokio::test]
async fn debug_logs_hold_no_key_and_no_code() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("k.db").display());
    let key = create_account(&db, dir.path());
    let port = free_port();
    let log = dir.path().join("server.log");
    let mut serve = command(&db, dir.path());
    serve
        .env("RUST_LOG", "debug")
        .stderr(std::fs::File::create(&log).unwrap());
    let server = Server::start_with(serve, port).await;
    let http = reqwest::Client::new();
    let url = format!(
        "{}/2fa/v1/otp?number=%2B4915123456789&via=SMS&otpCode=KQ7ZX9&apiKey={key}",
        server.base
    );
    let res = http.post(url).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let id = res.json::<Value>().await.unwrap()["otpId"]
        .as_str()
        .unwrap()
        .to_string();
    let check = format!("{}/2fa/v1/otp/{id}/check?otpCode=KQ7ZX9", server.base);
    assert_eq!(
        http.post(check)
            .header("apikey", &key)
            .send()
            .await
            .unwrap()
            .status(),
        202
    );
    // Letters keep the code from turning up by chance inside timestamps or ports.
    // The development outbox got the message: the one place a code may be written.
    let outbox = dir.path().join("outbox.log");
    for _ in 0..100 {
        if std::fs::read_to_string(&outbox).is_ok_and(|o| o.contains("KQ7ZX9")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(std::fs::read_to_string(&outbox).unwrap().contains("KQ7ZX9"));
    server.kill9();
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("DEBUG"), "debug logging was on");
    assert!(!logged.contains(&key), "the API key reached the log");
    assert!(!logged.contains("KQ7ZX9"), "the code reached the log");
}

struct Server {
    child: Child,
    base: String,
}

impl Server {
    async fn start(db: &str, dir: &std::path::Path, port: u16) -> Server {
        let mut serve = command(db, dir);
        serve.stderr(Stdio::null());
        Server::start_with(serve, port).await
    }

    /// Runs `keyhaven serve` from `serve` (environment and stderr set by the caller) on `port`
    /// and waits for its health check.
    async fn start_with(mut serve: Command, port: u16) -> Server {
        let child = serve
            .arg("serve")
            .env("KEYHAVEN_LISTEN", format!("127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        // Owned by `Server` at once, so that `Drop` reaps it on every path.
        let server = Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        for _ in 0..200 {
            if reqwest::get(format!("{}/healthz", server.base))
                .await
                .is_ok()
            {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("server did not start");
    }

    fn kill9(mut self) {
        // Child::kill sends SIGKILL.
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn command(db: &str, dir: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_keyhaven"));
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("KEYHAVEN_DATABASE_URL", db)
        .env("KEYHAVEN_DATA_DIR", dir)
        .env("KEYHAVEN_RATE_LIMIT_CALLS", "1000000")
        .env("KEYHAVEN_DELIVERY_LIMIT_PER_RECIPIENT", "0");
    c
}

/// `keyhaven account create` on the database; the API key it printed.
fn create_account(db: &str, dir: &std::path::Path) -> String {
    let out = command(db, dir)
        .args(["account", "create", "--name", "test"])
        .output()
        .unwrap();
    serde_json::from_slice::<Value>(&out.stdout).unwrap()["apiKey"]
        .as_str()
        .unwrap()
        .to_string()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn kill_nine_loses_no_acknowledged_otp(b: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (_guard, db) = fresh_database(b, dir.path()).await;
    let key = create_account(&db, dir.path());
    let port = free_port();
    let server = Server::start(&db, dir.path(), port).await;
    let http = reqwest::Client::new();
    // One send first: the number metadata loads on first use.
    let warm = http
        .post(format!(
            "{}/2fa/v1/otp?number=%2B4915123456789",
            server.base
        ))
        .header("apikey", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(warm.status(), 200);
    // Eight clients send until the server dies under them; every 200 is an acknowledged write.
    let clients = (0..8).map(|c| {
        let (http, key, base) = (http.clone(), key.clone(), server.base.clone());
        tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            for i in 0.. {
                let url = format!("{base}/2fa/v1/otp?number=%2B49151{c:02}{i:06}&via=SMS");
                match http.post(url).header("apikey", &key).send().await {
                    Ok(res) if res.status() == 200 => {
                        let Ok(body) = res.json::<Value>().await else {
                            break;
                        };
                        acknowledged.push(body["otpId"].as_str().unwrap().to_string());
                    }
                    Ok(res) => panic!(
                        "send answered {}: {}",
                        res.status(),
                        res.text().await.unwrap()
                    ),
                    Err(_) => break,
                }
            }
            acknowledged
        })
    });
    let clients: Vec<_> = clients.collect();
    tokio::time::sleep(Duration::from_millis(400)).await;
    server.kill9();
    let mut acknowledged = Vec::new();
    for c in clients {
        acknowledged.extend(c.await.unwrap());
    }
    assert!(
        acknowledged.len() > 20,
        "only {} sends before the kill",
        acknowledged.len()
    );

    let server = Server::start(&db, dir.path(), port).await;
    for id in &acknowledged {
        let res = http
            .get(format!("{}/2fa/v1/otp/{id}", server.base))
            .header("apikey", &key)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "acknowledged OTP {id} was lost");
    }
}
