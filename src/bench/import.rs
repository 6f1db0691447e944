//! The import's speed: writes a Passage export of N users, each with a passkey (a fresh P-256
//! key), then times `keyhaven import passage` — this binary, as an operator runs it — into a
//! fresh database (SQLite in a temporary folder unless a database URL is given).

use std::{io::Write, path::Path, process::Command, time::Instant};

use anyhow::Context as _;
use openssl::{ec::EcGroup, ec::EcKey, nid::Nid, pkey::PKey};
use serde_json::{json, Value};

use crate::{crypto, passage::transfer::public_key};

#[derive(Debug, Clone, clap::Args)]
pub struct ImportBenchArgs {
    #[arg(long, default_value_t = 100_000)]
    pub users: usize,
    /// An empty database to import into (default: a new SQLite file).
    #[arg(long)]
    pub database_url: Option<String>,
}

const APP_ID: &str = "benchImportApp";

/// Generates the file, imports it, and reports the time.
pub fn run(args: &ImportBenchArgs) -> anyhow::Result<Value> {
    let dir = tempfile_dir()?;
    let file = dir.join("export.jsonl");
    let started = Instant::now();
    write_export(&file, args.users)?;
    let generated_s = started.elapsed().as_secs_f64();
    let database_url = args
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", dir.join("keyhaven.db").display()));
    let keyhaven = |cli_args: &[&str]| -> anyhow::Result<String> {
        let out = Command::new(std::env::current_exe()?)
            .args(cli_args)
            .env("KEYHAVEN_DATA_DIR", &dir)
            .env("KEYHAVEN_DATABASE_URL", &database_url)
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "keyhaven {cli_args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8(out.stdout)?)
    };
    keyhaven(&[
        "app",
        "create",
        "--id",
        APP_ID,
        "--name",
        "Bench",
        "--auth-origin",
        "https://shop.example",
    ])?;
    let file_arg = file.to_str().context("temporary path")?;
    let started = Instant::now();
    let report: Value = serde_json::from_str(&keyhaven(&[
        "import", "passage", "--app", APP_ID, file_arg,
    ])?)?;
    let import_s = started.elapsed().as_secs_f64();
    let size = std::fs::metadata(&file)?.len();
    let _ = std::fs::remove_dir_all(&dir);
    Ok(json!({
        "users": args.users,
        "created": report["created"],
        "passkeys_created": report["passkeys_created"],
        "skipped": report["skipped"].as_array().map_or(0, Vec::len),
        "file_mb": (size as f64 / 1e6 * 10.0).round() / 10.0,
        "generate_seconds": (generated_s * 100.0).round() / 100.0,
        "import_seconds": (import_s * 100.0).round() / 100.0,
        "users_per_second": (args.users as f64 / import_s).round(),
    }))
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("keyhaven-bench-import-{}", crypto::random_id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// N users, one object per line, as the export writes them.
fn write_export(path: &Path, users: usize) -> anyhow::Result<()> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    for n in 0..users {
        let key = PKey::from_ec_key(EcKey::generate(&group)?)?;
        let pem = String::from_utf8(key.public_key_to_pem()?)?;
        let cose = public_key::to_cose(&public_key::parse(&pem).map_err(anyhow::Error::msg)?)
            .map_err(anyhow::Error::msg)?;
        let record = json!({
            "id": format!("user{n:07}"),
            "email": format!("user{n}@example.com"),
            "email_verified": true,
            "status": "active",
            "created_at": "2025-06-01T12:00:00.000Z",
            "last_login_at": "2025-12-01T08:30:00.000Z",
            "login_count": n % 50,
            "user_metadata": {},
            "webauthn_devices": [{
                "cred_id": crypto::base64url(format!("credential-{n:07}").as_bytes()),
                "public_key": cose,
                "sign_count": 0,
                "transports": ["internal", "hybrid"],
                "friendly_name": "Passkey",
                "created_at": "2025-06-01T12:00:00.000Z",
                "backup_eligible": true,
                "backup_state": true,
            }],
        });
        serde_json::to_writer(&mut out, &record)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}
