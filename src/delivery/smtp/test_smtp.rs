//! A minimal SMTP server on loopback for tests.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use base64::Engine;
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
    task::JoinHandle,
};

/// Reply lines (without CRLF) for the steps a test may want to fail.
#[derive(Debug, Clone)]
pub(crate) struct Replies {
    pub rcpt: String,
    pub data_end: String,
}

impl Default for Replies {
    fn default() -> Self {
        Replies {
            rcpt: "250 2.1.5 Ok".to_owned(),
            data_end: "250 2.0.0 Ok: queued".to_owned(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ReceivedMail {
    /// Reverse path from `MAIL FROM`, without angle brackets.
    pub mail_from: String,
    /// Accepted `RCPT TO` paths, without angle brackets.
    pub rcpt_to: Vec<String>,
    /// The DATA section with dot-stuffing undone, CRLF line ends kept.
    pub data: String,
    /// User and password from `AUTH PLAIN` on this connection.
    pub auth: Option<(String, String)>,
}

pub(crate) struct TestSmtpServer {
    addr: SocketAddr,
    mails: Arc<Mutex<Vec<ReceivedMail>>>,
    task: JoinHandle<()>,
}

impl TestSmtpServer {
    pub(crate) async fn start() -> TestSmtpServer {
        TestSmtpServer::start_with(Replies::default()).await
    }

    pub(crate) async fn start_with(replies: Replies) -> TestSmtpServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mails = Arc::new(Mutex::new(Vec::new()));
        let task_mails = Arc::clone(&mails);
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let mails = Arc::clone(&task_mails);
                let replies = replies.clone();
                tokio::spawn(async move {
                    // A client that hangs up mid-session is not the server's failure.
                    let _ = serve(socket, &replies, &mails).await;
                });
            }
        });
        TestSmtpServer { addr, mails, task }
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `smtp://127.0.0.1:PORT`, plain text.
    pub(crate) fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    /// Mails accepted so far; each is recorded before the final 250 goes out.
    pub(crate) fn mails(&self) -> Vec<ReceivedMail> {
        self.mails.lock().unwrap().clone()
    }
}

impl Drop for TestSmtpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    socket: TcpStream,
    replies: &Replies,
    mails: &Mutex<Vec<ReceivedMail>>,
) -> std::io::Result<()> {
    let (read, mut write) = socket.into_split();
    let mut reader = BufReader::new(read);
    let mut auth = None;
    let mut mail = ReceivedMail::default();
    write.write_all(b"220 test.local ESMTP\r\n").await?;

    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end_matches(['\r', '\n']);
        let verb = command
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        let answer = match verb.as_str() {
            "EHLO" => "250-test.local\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 AUTH PLAIN".to_owned(),
            "HELO" | "NOOP" => "250 Ok".to_owned(),
            "AUTH" => {
                let mut words = command.split_whitespace().skip(1);
                let mechanism = words.next().unwrap_or("").to_ascii_uppercase();
                let initial = match words.next() {
                    Some(initial) => initial.to_owned(),
                    None if mechanism == "PLAIN" => {
                        write.write_all(b"334 \r\n").await?;
                        let mut response = String::new();
                        reader.read_line(&mut response).await?;
                        response
                    }
                    None => String::new(),
                };
                match decode_plain(&initial).filter(|_| mechanism == "PLAIN") {
                    Some(credentials) => {
                        auth = Some(credentials);
                        "235 2.7.0 Authentication successful".to_owned()
                    }
                    None => "535 5.7.8 Authentication failed".to_owned(),
                }
            }
            "MAIL" => {
                mail = ReceivedMail {
                    mail_from: path_argument(command),
                    auth: auth.clone(),
                    ..ReceivedMail::default()
                };
                "250 2.1.0 Ok".to_owned()
            }
            "RCPT" => {
                if replies.rcpt.starts_with('2') {
                    mail.rcpt_to.push(path_argument(command));
                }
                replies.rcpt.clone()
            }
            "DATA" => {
                write
                    .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                    .await?;
                let mut data = String::new();
                loop {
                    let mut data_line = String::new();
                    if reader.read_line(&mut data_line).await? == 0 {
                        return Ok(());
                    }
                    if data_line == ".\r\n" {
                        break;
                    }
                    let unstuffed = data_line.strip_prefix('.').unwrap_or(&data_line);
                    data.push_str(unstuffed);
                }
                mail.data = data;
                if replies.data_end.starts_with('2') {
                    mails.lock().unwrap().push(std::mem::take(&mut mail));
                }
                replies.data_end.clone()
            }
            "RSET" => {
                mail = ReceivedMail::default();
                "250 2.0.0 Ok".to_owned()
            }
            "QUIT" => {
                write.write_all(b"221 2.0.0 Bye\r\n").await?;
                return Ok(());
            }
            _ => "502 5.5.2 Command not recognized".to_owned(),
        };
        write.write_all(format!("{answer}\r\n").as_bytes()).await?;
    }
}

/// The address in `MAIL FROM:<a@b> PARAMS` or `RCPT TO:<a@b>`.
fn path_argument(command: &str) -> String {
    let after_colon = command.split_once(':').map(|(_, rest)| rest).unwrap_or("");
    let path = after_colon.split_whitespace().next().unwrap_or("");
    path.trim_start_matches('<')
        .trim_end_matches('>')
        .to_owned()
}

fn decode_plain(b64: &str) -> Option<(String, String)> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let mut parts = raw.split(|&b| b == 0);
    let _authzid = parts.next()?;
    let user = String::from_utf8(parts.next()?.to_vec()).ok()?;
    let pass = String::from_utf8(parts.next()?.to_vec()).ok()?;
    Some((user, pass))
}
