//! `keyhaven import passage` and `keyhaven export`: the report or summary on stdout as JSON,
//! progress on stderr (a bar on a terminal, a line every few seconds otherwise).

use std::{
    io::{BufReader, IsTerminal, Write},
    path::PathBuf,
    time::{Duration, Instant},
};

use clap::{Args, Subcommand};
use serde_json::{json, Value};

use crate::passage::{transfer, Passage};

#[derive(Subcommand)]
pub enum ImportCommand {
    /// Passage users: Manage API user objects (a JSON array or one per line) with their
    /// `webauthn_devices`, or the console's CSV template. Ids are kept; importing a file
    /// again changes nothing. Prints a report of what was created, updated and skipped.
    Passage {
        #[arg(long = "app")]
        app_id: String,
        file: PathBuf,
    },
}

#[derive(Args)]
pub struct ExportArgs {
    #[arg(long = "app")]
    app_id: String,
    /// Where to write; stdout when absent.
    file: Option<PathBuf>,
}

pub async fn import(passage: &Passage, command: ImportCommand) -> anyhow::Result<Value> {
    let ImportCommand::Passage { app_id, file } = command;
    let app = passage.app(&app_id).await?;
    let opened =
        std::fs::File::open(&file).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let reads = transfer::record::read_all(&mut BufReader::new(opened))
        .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let mut progress = Progress::new();
    let report = transfer::import(passage, &app, reads, &mut |done, total| {
        progress.show(done, total)
    })
    .await?;
    progress.finish();
    Ok(serde_json::to_value(report)?)
}

/// Writes the export; with a file, answers a summary for stdout.
pub async fn export(passage: &Passage, args: ExportArgs) -> anyhow::Result<Option<Value>> {
    let app = passage.app(&args.app_id).await?;
    match args.file {
        Some(path) => {
            let file = std::fs::File::create(&path)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            let mut out = std::io::BufWriter::new(file);
            let (users, passkeys) = transfer::export(passage, &app, &mut out).await?;
            out.flush()?;
            Ok(Some(
                json!({"app_id": app.id, "users": users, "passkeys": passkeys,
                           "file": path.display().to_string()}),
            ))
        }
        None => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            transfer::export(passage, &app, &mut out).await?;
            out.flush()?;
            Ok(None)
        }
    }
}

/// Progress of a long import on stderr.
struct Progress {
    terminal: bool,
    started: Instant,
    last: Instant,
}

impl Progress {
    fn new() -> Progress {
        Progress {
            terminal: std::io::stderr().is_terminal(),
            started: Instant::now(),
            last: Instant::now(),
        }
    }

    fn show(&mut self, done: usize, total: usize) {
        let elapsed = self.started.elapsed().as_secs_f64();
        if self.terminal {
            let width = 30;
            let filled = (done * width).checked_div(total).unwrap_or(width);
            eprint!(
                "\r[{}{}] {done}/{total} records, {elapsed:.1} s",
                "#".repeat(filled),
                " ".repeat(width - filled)
            );
        } else if self.last.elapsed() >= Duration::from_secs(5) || done == total {
            eprintln!("imported {done}/{total} records in {elapsed:.1} s");
            self.last = Instant::now();
        }
    }

    fn finish(&self) {
        if self.terminal {
            eprintln!();
        }
    }
}
