//! The `keyhaven` command line: serve, migrate, and administration that prints JSON.

mod social;
mod transfer;

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};
use serde_json::json;

use crate::{
    config::{Config, LogFormat},
    crypto::{self, ServerKeys},
    delivery::Providers,
    domain::now_ms,
    files,
    passage::{
        app_keys,
        apps::{self, AppChanges, AppSettings, NewApp},
    },
    server,
    state::AppState,
    storage::{Backend, Store},
    tyntec::accounts,
};

#[derive(Parser)]
#[command(
    name = "keyhaven",
    version,
    about = "Self-hosted passkeys, magic links and one-time codes"
)]
struct Cli {
    /// TOML configuration file; `KEYHAVEN_*` environment variables override it.
    #[arg(long, global = true, env = "KEYHAVEN_CONFIG")]
    config: Option<PathBuf>,
    /// Log format (overrides `log_format` / `KEYHAVEN_LOG_FORMAT`).
    #[arg(long, global = true, value_enum)]
    log_format: Option<LogFormat>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve every API on one listener.
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// tyntec 2FA accounts.
    #[command(subcommand)]
    Account(AccountCommand),
    /// API keys of tyntec accounts.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Passage apps.
    #[command(subcommand)]
    App(AppCommand),
    /// Load generators against a running server.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Import users and their passkeys from an export.
    #[command(subcommand)]
    Import(transfer::ImportCommand),
    /// Write an app's users and passkey public keys in the import format, one JSON object
    /// per line (to FILE, or to stdout).
    Export(transfer::ExportArgs),
}

#[derive(Subcommand)]
enum AccountCommand {
    /// Create an account with its default application; prints `{"accountId","apiKey"}`.
    Create {
        #[arg(long)]
        name: String,
    },
    /// List accounts.
    List,
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Create another API key for an account; prints `{"keyId","apiKey"}`.
    Create {
        #[arg(long)]
        account: String,
        #[arg(long, default_value = "")]
        label: String,
    },
    /// List an account's keys (never the keys themselves).
    List {
        #[arg(long)]
        account: String,
    },
    /// Revoke a key by its id.
    Revoke { key_id: String },
}

#[derive(Subcommand)]
enum AppCommand {
    /// Create an app with its API key and signing key; prints `{"app_id","api_key"}`.
    Create {
        #[arg(long)]
        name: String,
        /// The origin of the pages that run passkey ceremonies (`https://example.com`).
        #[arg(long)]
        auth_origin: String,
        /// Keep an app id from the hosted service.
        #[arg(long)]
        id: Option<String>,
        #[arg(long, default_value = "/")]
        redirect_url: String,
        #[arg(long, default_value = "/")]
        login_url: String,
        /// An exact URL social logins may return to (repeatable).
        #[arg(long = "allowed-redirect-url")]
        allowed_redirect_urls: Vec<String>,
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
        public_signup: bool,
        /// `email`, `phone` or `both`.
        #[arg(long, default_value = "email", value_parser = ["email", "phone", "both"])]
        allowed_identifier: String,
        /// More settings as the App object's fields in JSON, as `app update` takes them
        /// (`'{"user_metadata_schema": [...], "session_timeout_length": 600}'`).
        #[arg(long)]
        settings: Option<String>,
    },
    /// Change settings with the App object's fields as JSON, as `PATCH /v1/apps/{app_id}`
    /// takes them (`'{"session_timeout_length": 600}'`); prints the app.
    Update { app_id: String, settings: String },
    /// List apps.
    List,
    /// Sign with a new key; the old one stays published until its tokens have expired.
    RotateKey { app_id: String },
    /// Create another API key for the Manage API; prints `{"api_key", "secret"}` (the secret
    /// only this once).
    CreateApiKey {
        app_id: String,
        #[arg(long)]
        name: String,
    },
    /// List an app's API keys (never their secrets).
    ListApiKeys { app_id: String },
    /// Revoke an API key at once; an app's last key cannot be revoked.
    RevokeApiKey { app_id: String, key_id: String },
    /// Social login providers.
    #[command(subcommand)]
    Social(social::SocialCommand),
}

#[derive(Subcommand)]
enum BenchCommand {
    /// send → capture → check round trips against the tyntec API.
    Tyntec(crate::bench::tyntec::TyntecBenchArgs),
    /// register by SMS passcode → capture → activate → refresh against the Passage API.
    Passage(crate::bench::passage::PassageBenchArgs),
    /// passkey login (start → the software authenticator signs → finish) against the
    /// Passage API.
    Passkey(crate::bench::passkey::PasskeyBenchArgs),
    /// RS256 signatures per second on this machine (the ceiling of token issuance).
    Rsa(crate::bench::rsa::RsaBenchArgs),
    /// Writes an export of N users with passkeys and times `keyhaven import passage` of it.
    Import(crate::bench::import::ImportBenchArgs),
    /// The reference OTP server (tyntec API subset) that `bench tyntec` results are compared to.
    Reference(crate::bench::reference::ReferenceArgs),
}

pub async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::Bench(BenchCommand::Rsa(args)) = &cli.command {
        let rate = crate::bench::rsa::run(args)?;
        println!("{}", json!({"rs256_signatures_per_second": rate.round()}));
        return Ok(());
    }
    if let Command::Bench(BenchCommand::Import(args)) = &cli.command {
        println!("{}", crate::bench::import::run(args)?);
        return Ok(());
    }
    if let Command::Bench(BenchCommand::Reference(args)) = cli.command {
        init_logging(LogFormat::Human, "warn");
        return crate::bench::reference::run(args).await;
    }
    if let Command::Bench(
        bench @ (BenchCommand::Tyntec(_) | BenchCommand::Passage(_) | BenchCommand::Passkey(_)),
    ) = cli.command
    {
        init_logging(LogFormat::Human, "warn");
        let (json, report) = match bench {
            BenchCommand::Tyntec(args) => (args.json, crate::bench::tyntec::run(args).await?),
            BenchCommand::Passage(args) => (args.json, crate::bench::passage::run(args).await?),
            BenchCommand::Passkey(args) => (args.json, crate::bench::passkey::run(args).await?),
            BenchCommand::Rsa(_) | BenchCommand::Import(_) | BenchCommand::Reference(_) => {
                return Ok(())
            }
        };
        if json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            println!("{report}");
        }
        return Ok(());
    }
    let mut config = Config::load(cli.config.as_deref())?;
    if let Some(format) = cli.log_format {
        config.log_format = format;
    }
    match cli.command {
        Command::Serve => {
            init_logging(config.log_format, "info");
            serve(config).await
        }
        command => {
            init_logging(config.log_format, "warn");
            let store = Store::open(&config.database_url(), 2).await?;
            let keys = server_keys(&config)?;
            let state = AppState::new(config, store.clone(), keys);
            let result = admin(&state, command).await;
            store.close().await;
            result
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    for var in Config::unknown_env_vars() {
        tracing::warn!(variable = %var, "unknown configuration variable ignored");
    }
    let keys = server_keys(&config)?;
    let store = Store::open(&config.database_url(), config.database_max_connections).await?;
    if store.backend() == Backend::Postgres && config.secret.is_none() {
        tracing::warn!(
            "KEYHAVEN_SECRET is not set: this node uses its own secret file, so other nodes \
             cannot check codes it issued"
        );
    }
    if files::shared_with_others(&config.data_dir) {
        tracing::warn!(
            folder = %config.data_dir.display(),
            "the data folder is open to other users: it holds the database and may hold the \
             secret; chmod 700 it"
        );
    }
    let providers = Providers::from_config(&config)?;
    if providers.uses_log() {
        tracing::warn!(
            file = %config.data_dir.join("outbox.log").display(),
            "messages go to the development outbox log, not to people: not for production"
        );
    }
    let state = AppState::new(config, store.clone(), keys);
    let (listening, server) = server::bind(state, providers, shutdown_signal()).await?;
    let addr = listening.addr;
    tracing::info!(%addr, database = store.backend().as_str(), "keyhaven listening");
    if let Some(addr) = listening.metrics_addr {
        tracing::info!(%addr, "metrics listening");
    }
    server.await?;
    store.close().await;
    Ok(())
}

async fn admin(state: &AppState, command: Command) -> anyhow::Result<()> {
    let (store, passage) = (&state.store, &state.passage);
    let out: serde_json::Value = match command {
        Command::Migrate => json!({"migrated": true, "database": store.backend().as_str()}),
        Command::Account(AccountCommand::Create { name }) => {
            let (account, key) = accounts::create(store, &name).await?;
            json!({"accountId": account.id, "apiKey": key})
        }
        Command::Account(AccountCommand::List) => {
            let accounts = store.list_accounts().await?;
            json!(accounts
                .iter()
                .map(|a| json!({"accountId": a.id, "name": a.name, "created": a.created_at}))
                .collect::<Vec<_>>())
        }
        Command::Key(KeyCommand::Create { account, label }) => {
            let (id, key) = accounts::create_key(store, &account, &label).await?;
            json!({"keyId": id, "apiKey": key})
        }
        Command::Key(KeyCommand::List { account }) => {
            let keys = store.list_api_keys(&account).await?;
            json!(keys
                .iter()
                .map(
                    |k| json!({"keyId": k.id, "label": k.label, "created": k.created_at,
                                "revoked": k.revoked_at})
                )
                .collect::<Vec<_>>())
        }
        Command::Key(KeyCommand::Revoke { key_id }) => {
            store.revoke_api_key(&key_id, now_ms()).await?;
            json!({"keyId": key_id, "revoked": true})
        }
        Command::App(AppCommand::Create {
            name,
            auth_origin,
            id,
            redirect_url,
            login_url,
            allowed_redirect_urls,
            public_signup,
            allowed_identifier,
            settings: more_settings,
        }) => {
            let settings = AppSettings {
                auth_origin,
                redirect_url,
                login_url,
                allowed_redirect_urls,
                public_signup,
                allowed_identifier,
                ..AppSettings::default()
            };
            let (mut name, mut settings) = (name, settings);
            if let Some(more) = more_settings {
                changes_of(&more)?.apply(&mut name, &mut settings);
            }
            let new = NewApp { id, name, settings };
            let (app, api_key) = apps::create(passage, new).await?;
            json!({"app_id": app.id, "api_key": api_key})
        }
        Command::App(AppCommand::Update { app_id, settings }) => {
            let app = apps::update(passage, &app_id, changes_of(&settings)?).await?;
            json!({"app_id": app.id, "name": app.name, "settings": app.settings})
        }
        Command::App(AppCommand::List) => {
            let list = store.list_apps().await?;
            json!(list
                .iter()
                .map(|a| json!({"app_id": a.id, "name": a.name, "created": a.created_at}))
                .collect::<Vec<_>>())
        }
        Command::App(AppCommand::RotateKey { app_id }) => {
            let kid = apps::rotate_key(passage, &app_id).await?;
            json!({"app_id": app_id, "kid": kid})
        }
        Command::App(AppCommand::CreateApiKey { app_id, name }) => {
            let app = passage.app(&app_id).await?;
            let (key, secret) = app_keys::create(passage, &app, &name).await?;
            json!({"api_key": key, "secret": secret})
        }
        Command::App(AppCommand::ListApiKeys { app_id }) => {
            let app = passage.app(&app_id).await?;
            json!(app_keys::list(passage, &app).await?)
        }
        Command::App(AppCommand::RevokeApiKey { app_id, key_id }) => {
            let app = passage.app(&app_id).await?;
            app_keys::revoke(passage, &app, &key_id).await?;
            json!({"revoked": key_id})
        }
        Command::App(AppCommand::Social(command)) => social::run(passage, command).await?,
        Command::Import(command) => transfer::import(passage, command).await?,
        Command::Export(args) => match transfer::export(passage, args).await? {
            Some(summary) => summary,
            None => return Ok(()),
        },
        Command::Serve | Command::Bench(_) => return Ok(()),
    };
    println!("{out}");
    Ok(())
}

/// Settings changes from the App object's fields as JSON.
fn changes_of(json: &str) -> anyhow::Result<AppChanges> {
    let json =
        serde_json::from_str(json).map_err(|e| anyhow::anyhow!("settings are not JSON: {e}"))?;
    Ok(AppChanges::from_json(json)?)
}

/// The configured server secret, or one generated once into the data folder.
pub fn server_keys(config: &Config) -> anyhow::Result<ServerKeys> {
    if let Some(secret) = &config.secret {
        return Ok(ServerKeys::from_secret(secret.expose()));
    }
    let path = config.data_dir.join("secret.key");
    let secret = match std::fs::read_to_string(&path) {
        Ok(s) => s.trim().to_string(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            files::private_dir(&config.data_dir)?;
            let secret = crypto::random_token();
            write_private(&path, &secret)?;
            secret
        }
        Err(e) => return Err(anyhow::anyhow!("{}: {e}", path.display())),
    };
    Ok(ServerKeys::from_secret(&secret))
}

fn write_private(path: &std::path::Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = files::private_file()
        .write(true)
        .create_new(true)
        .open(path)?;
    file.write_all(contents.as_bytes())
}

fn init_logging(format: LogFormat, default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Human => builder.try_init(),
    };
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutting down");
}
