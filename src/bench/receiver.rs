//! The embedded message receiver: an HTTP endpoint standing in for an SMS/email provider, which
//! hands each message the server under test sends to the virtual user waiting for it.

use std::{
    collections::{HashMap, VecDeque},
    net::SocketAddr,
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};

use anyhow::Context as _;
use axum::{body::Bytes, extract::State, http::StatusCode, Router};
use serde::Deserialize;
use tokio::{
    net::{TcpListener, ToSocketAddrs},
    sync::oneshot,
    task::JoinHandle,
};

/// One message the receiver took, as the server's webhook provider posts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    pub channel: Option<String>,
    pub to: String,
    pub text: String,
    pub subject: Option<String>,
    /// When the receiver got it: lets a flow measure delivery even if it starts waiting late.
    pub arrived: Instant,
}

#[derive(Deserialize)]
struct WebhookBody {
    #[serde(default)]
    channel: Option<String>,
    to: String,
    #[serde(default)]
    text: String,
    #[serde(default)]
    subject: Option<String>,
}

/// Arrivals nobody waits for are kept this long (at most `EARLY_CAP` of them before pruning), so
/// messages that come after their waiter timed out do not pile up.
const EARLY_TTL: Duration = Duration::from_secs(60);
const EARLY_CAP: usize = 10_000;

#[derive(Default)]
struct Inbox {
    waiters: HashMap<String, oneshot::Sender<ReceivedMessage>>,
    early: HashMap<String, VecDeque<ReceivedMessage>>,
    early_len: usize,
    received: u64,
}

impl Inbox {
    fn deliver(&mut self, message: ReceivedMessage) {
        self.received += 1;
        let message = match self.waiters.remove(&message.to) {
            Some(waiter) => match waiter.send(message) {
                Ok(()) => return,
                // The waiter went away without taking it; keep it for the next one.
                Err(message) => message,
            },
            None => message,
        };
        if self.early_len >= EARLY_CAP {
            self.prune_early();
        }
        self.early_len += 1;
        self.early
            .entry(message.to.clone())
            .or_default()
            .push_back(message);
    }

    fn take_early(&mut self, to: &str) -> Option<ReceivedMessage> {
        let queue = self.early.get_mut(to)?;
        let message = queue.pop_front();
        if queue.is_empty() {
            self.early.remove(to);
        }
        if message.is_some() {
            self.early_len -= 1;
        }
        message
    }

    fn prune_early(&mut self) {
        let now = Instant::now();
        self.early.retain(|_, queue| {
            queue.retain(|m| now.saturating_duration_since(m.arrived) < EARLY_TTL);
            !queue.is_empty()
        });
        self.early_len = self.early.values().map(VecDeque::len).sum();
    }
}

#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Inbox>>);

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inbox> {
        // A panic while holding the lock cannot leave the maps inconsistent enough to matter
        // for a benchmark, so a poisoned lock is used as is.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

async fn receive(State(shared): State<Shared>, body: Bytes) -> StatusCode {
    let arrived = Instant::now();
    let Ok(body) = serde_json::from_slice::<WebhookBody>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    shared.lock().deliver(ReceivedMessage {
        channel: body.channel,
        to: body.to,
        text: body.text,
        subject: body.subject,
        arrived,
    });
    StatusCode::OK
}

/// An HTTP endpoint that takes the server's webhook deliveries (`POST` of JSON with at least
/// `to` and `text`, on any path) and hands each to whoever waits for its recipient. Shuts down on
/// drop or on [`Receiver::shutdown`].
pub struct Receiver {
    addr: SocketAddr,
    shared: Shared,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

/// Binds the receiver on `addr` (port 0 picks a free port; see [`Receiver::addr`]).
pub async fn start_receiver(addr: impl ToSocketAddrs) -> anyhow::Result<Receiver> {
    let listener = TcpListener::bind(addr)
        .await
        .context("binding the message receiver")?;
    let addr = listener.local_addr()?;
    let shared = Shared::default();
    let router = Router::new().fallback(receive).with_state(shared.clone());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, router)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await;
        if let Err(error) = served {
            tracing::warn!(%error, "message receiver stopped");
        }
    });
    Ok(Receiver {
        addr,
        shared,
        stop: Some(stop),
        task: Some(task),
    })
}

impl Receiver {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Messages taken so far, including ones nobody waited for.
    pub fn received(&self) -> u64 {
        self.shared.lock().received
    }

    /// Text of the next message to `to`, whether it arrived before this call or within
    /// `timeout`.
    pub async fn wait_for(&self, to: &str, timeout: Duration) -> anyhow::Result<String> {
        Ok(self.wait_for_message(to, timeout).await?.text)
    }

    /// Like [`Receiver::wait_for`], with the whole message and its arrival time.
    pub async fn wait_for_message(
        &self,
        to: &str,
        timeout: Duration,
    ) -> anyhow::Result<ReceivedMessage> {
        let mut rx = {
            let mut inbox = self.shared.lock();
            if let Some(message) = inbox.take_early(to) {
                return Ok(message);
            }
            anyhow::ensure!(
                inbox.waiters.get(to).is_none_or(|w| w.is_closed()),
                "someone already waits for a message to {to}"
            );
            let (tx, rx) = oneshot::channel();
            inbox.waiters.insert(to.to_owned(), tx);
            rx
        };
        match tokio::time::timeout(timeout, &mut rx).await {
            Ok(Ok(message)) => Ok(message),
            Ok(Err(_)) => anyhow::bail!("message receiver stopped"),
            Err(_) => {
                // The message may have come between the timeout and taking the lock.
                self.shared.lock().waiters.remove(to);
                match rx.try_recv() {
                    Ok(message) => Ok(message),
                    Err(_) => anyhow::bail!("no message to {to} within {timeout:?}"),
                }
            }
        }
    }

    /// Stops accepting messages and waits (briefly) for the server task to end.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut task) = self.task.take() {
            // Open keep-alive connections can hold graceful shutdown; do not wait on them long.
            if tokio::time::timeout(Duration::from_secs(2), &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inbox_prunes_stale_arrivals() {
        let mut inbox = Inbox::default();
        let old = Instant::now().checked_sub(EARLY_TTL * 2).unwrap();
        for i in 0..EARLY_CAP {
            inbox.deliver(ReceivedMessage {
                channel: None,
                to: format!("+{i}"),
                text: String::new(),
                subject: None,
                arrived: old,
            });
        }
        assert_eq!(inbox.early_len, EARLY_CAP);
        inbox.deliver(ReceivedMessage {
            channel: None,
            to: "+new".into(),
            text: "fresh".into(),
            subject: None,
            arrived: Instant::now(),
        });
        assert_eq!(inbox.early_len, 1);
        assert_eq!(inbox.take_early("+new").unwrap().text, "fresh");
        assert_eq!(inbox.early_len, 0);
        assert!(inbox.early.is_empty());
    }
}
