//! The development provider: appends each message, code included, as one line to a local file.

use std::path::PathBuf;

use async_trait::async_trait;
use chrono::{SecondsFormat, Utc};
use tokio::{fs, io::AsyncWriteExt, sync::Mutex};

use super::{DeliveryError, Message, Provider, Receipt};
use crate::files;

/// Writes `{time}\t{channel}\t{to}\t{reference}\t{text}` lines to `path`.
#[derive(Debug)]
pub struct LogProvider {
    path: PathBuf,
    /// Serialises writers so that concurrent messages never interleave within a line.
    write_lock: Mutex<()>,
}

impl LogProvider {
    pub fn new(path: PathBuf) -> LogProvider {
        LogProvider {
            path,
            write_lock: Mutex::new(()),
        }
    }

    async fn append(&self, line: &str) -> std::io::Result<()> {
        let _guard = self.write_lock.lock().await;
        if let Some(parent) = self.path.parent().filter(|p| !p.as_os_str().is_empty()) {
            files::private_dir(parent)?;
        }
        // Opened per message so that a developer may delete or rotate the file at any time.
        let mut options = files::private_file();
        options.create(true).append(true);
        let mut file = fs::OpenOptions::from(options).open(&self.path).await?;
        file.write_all(line.as_bytes()).await?;
        file.flush().await
    }
}

/// Keeps a field on its own line and column: line breaks and tabs become spaces.
fn one_line(field: &str) -> String {
    field
        .replace("\r\n", " ")
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn format_line(message: &Message) -> String {
    format!(
        "{}\t{}\t{}\t{}\t{}\n",
        Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
        message.channel,
        one_line(&message.to),
        one_line(&message.reference),
        one_line(&message.text),
    )
}

#[async_trait]
impl Provider for LogProvider {
    fn name(&self) -> &'static str {
        "log"
    }

    async fn send(&self, message: &Message) -> Result<Receipt, DeliveryError> {
        self.append(&format_line(message)).await.map_err(|err| {
            DeliveryError::Unavailable(format!(
                "cannot write delivery log {}: {err}",
                self.path.display()
            ))
        })?;
        tracing::info!(
            provider = "log",
            channel = %message.channel,
            to = %super::masked(&message.to),
            reference = %message.reference,
            path = %self.path.display(),
            "message written to delivery log"
        );
        Ok(Receipt::default())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::Channel;
    use super::*;

    fn message(channel: Channel, to: &str, text: &str, reference: &str) -> Message {
        Message {
            channel,
            to: to.to_owned(),
            text: text.to_owned(),
            subject: None,
            sender: None,
            language: None,
            reference: reference.to_owned(),
        }
    }

    fn read_lines(path: &std::path::Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    #[tokio::test]
    async fn writes_one_tab_separated_line_creating_directories() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/deeper/messages.log");
        let provider = LogProvider::new(path.clone());

        let before = Utc::now();
        let receipt = provider
            .send(&message(
                Channel::Sms,
                "+4989123456",
                "Your code is 123456.\nValid for 5 minutes.\r\nBye",
                "otp-42",
            ))
            .await
            .unwrap();

        assert_eq!(receipt, Receipt::default());
        assert_eq!(provider.name(), "log");
        let content = std::fs::read_to_string(&path).unwrap();
        assert!(content.ends_with('\n'));
        let lines = read_lines(&path);
        assert_eq!(lines.len(), 1);
        let fields: Vec<&str> = lines[0].split('\t').collect();
        assert_eq!(fields.len(), 5, "{fields:?}");
        let time = chrono::DateTime::parse_from_rfc3339(fields[0]).unwrap();
        assert!(time >= before - chrono::Duration::seconds(1));
        assert_eq!(
            &fields[1..],
            [
                "sms",
                "+4989123456",
                "otp-42",
                "Your code is 123456. Valid for 5 minutes. Bye"
            ]
        );
    }

    #[tokio::test]
    async fn appends_to_an_existing_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("messages.log");
        std::fs::write(&path, "earlier line\n").unwrap();
        let provider = LogProvider::new(path.clone());

        provider
            .send(&message(Channel::Voice, "+4930", "eins", "otp-1"))
            .await
            .unwrap();
        provider
            .send(&message(Channel::Email, "a@example.com", "link", "ml-2"))
            .await
            .unwrap();

        let lines = read_lines(&path);
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0], "earlier line");
        assert!(
            lines[1].ends_with("\tvoice\t+4930\totp-1\teins"),
            "{}",
            lines[1]
        );
        assert!(
            lines[2].ends_with("\temail\ta@example.com\tml-2\tlink"),
            "{}",
            lines[2]
        );
    }

    #[tokio::test]
    async fn control_characters_cannot_forge_lines_or_columns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("messages.log");
        let provider = LogProvider::new(path.clone());

        provider
            .send(&message(Channel::Sms, "+49\n1\tx", "a\tb", "r\r1"))
            .await
            .unwrap();

        let lines = read_lines(&path);
        assert_eq!(lines.len(), 1);
        let fields: Vec<&str> = lines[0].split('\t').collect();
        assert_eq!(&fields[1..], ["sms", "+49 1 x", "r 1", "a b"]);
    }

    #[tokio::test]
    async fn concurrent_messages_never_interleave() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("messages.log");
        let provider = Arc::new(LogProvider::new(path.clone()));
        let long_text = "x".repeat(8192);

        let mut tasks = Vec::new();
        for i in 0..32 {
            let provider = Arc::clone(&provider);
            let text = format!("{i}:{long_text}");
            tasks.push(tokio::spawn(async move {
                provider
                    .send(&message(Channel::Sms, "+1", &text, &format!("r{i}")))
                    .await
                    .unwrap();
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }

        let lines = read_lines(&path);
        assert_eq!(lines.len(), 32);
        let mut seen: Vec<usize> = lines
            .iter()
            .map(|line| {
                let fields: Vec<&str> = line.split('\t').collect();
                assert_eq!(fields.len(), 5);
                let (index, text) = fields[4].split_once(':').unwrap();
                assert_eq!(text, long_text);
                assert_eq!(fields[3], format!("r{index}"));
                index.parse().unwrap()
            })
            .collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..32).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn unwritable_path_is_unavailable() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("not-a-dir");
        std::fs::write(&blocker, "").unwrap();
        let provider = LogProvider::new(blocker.join("messages.log"));

        let result = provider
            .send(&message(Channel::Sms, "+1", "code 1", "r"))
            .await;

        assert!(
            matches!(&result, Err(DeliveryError::Unavailable(r)) if !r.contains("code 1")),
            "{result:?}"
        );
    }
}
