//! Configuration: defaults, overlaid by an optional TOML file, overlaid by `KEYHAVEN_*`
//! environment variables. The variable names are a contract; the struct stays flat so that
//! `KEYHAVEN_SMS_WEBHOOK_URL` maps to `sms_webhook_url` with no renaming table.

use std::{fmt, net::SocketAddr, path::PathBuf};

use figment::{
    providers::{Env, Format, Serialized, Toml},
    Figment,
};
use serde::{Deserialize, Serialize};

use crate::client_address::Cidrs;

/// A configured secret: `Debug` never shows it.
#[derive(Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmsProviderKind {
    Log,
    Webhook,
    Tyntec,
    Twilio,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub listen: SocketAddr,
    pub public_url: String,
    /// `sqlite://PATH` or `postgres://...`; unset means a SQLite file in `data_dir`.
    pub database_url: Option<String>,
    pub data_dir: PathBuf,
    pub log_format: LogFormat,
    /// Server secret: keys the OTP code hashes and seals stored codes. Unset means a random
    /// one kept in `data_dir/secret.key` (fine for one node; several nodes must share one).
    pub secret: Option<Secret>,

    pub sms_provider: SmsProviderKind,
    /// Overrides `sms_provider` for voice calls.
    pub voice_provider: Option<SmsProviderKind>,
    pub sms_webhook_url: Option<String>,
    pub tyntec_base_url: String,
    pub tyntec_api_key: Option<Secret>,
    pub twilio_base_url: String,
    pub twilio_account_sid: Option<String>,
    pub twilio_auth_token: Option<Secret>,
    pub twilio_from: Option<String>,
    pub smtp_url: Option<Secret>,
    pub email_from: String,
    pub delivery_timeout_seconds: u64,
    pub delivery_max_attempts: u32,
    /// Messages per recipient per hour from one tenant (a tyntec account, a Passage app);
    /// 0 = off: a guard against SMS pumping and mail bombing.
    pub delivery_limit_per_recipient: u32,
    /// Messages per recipient per hour from all tenants together (0 = off).
    pub delivery_limit_per_recipient_global: u32,
    /// Messages per hour from one tenant in all (0 = off): a cap on what a leaked key or an
    /// abused sign-up form can cost.
    pub delivery_limit_per_tenant: u32,
    /// SMS and calls per hour to numbers sharing their first `delivery_prefix_digits` digits
    /// (country code included), from all tenants (0 = off): pumping fraud walks number ranges.
    pub delivery_limit_per_prefix: u32,
    pub delivery_prefix_digits: u32,
    /// Comma-separated ISO 3166-1 alpha-2 codes: when set, only numbers of these countries
    /// receive SMS or calls.
    pub country_allow: String,
    /// Comma-separated ISO 3166-1 alpha-2 codes whose numbers never receive SMS or calls.
    pub country_deny: String,

    /// Wrong codes per person (a Passage user, a tyntec account's recipient) per window, over
    /// all their codes; beyond, verifications answer 429 until the window ends (0 = off).
    pub verify_failure_limit: u32,
    pub verify_failure_window_seconds: u64,

    pub rate_limit_calls: u32,
    pub rate_limit_period_seconds: u64,
    /// A rotated refresh token presented again within this many seconds gets the same
    /// successor (parallel tabs); later, it revokes its family.
    pub refresh_grace_seconds: u64,
    /// Resends allowed per OTP.
    pub otp_resend_limit: u32,
    /// Database pool size (PostgreSQL; SQLite readers).
    pub database_max_connections: u32,

    /// Open client connections at most; beyond, new ones wait in the listen backlog.
    pub max_connections: u32,
    /// A connection that has not sent a request's headers within this time is closed.
    pub header_read_timeout_seconds: u64,
    /// A request whose body has not arrived within this time (from its headers) answers 408.
    pub body_read_timeout_seconds: u64,
    /// Comma-separated CIDRs of reverse proxies: from their connections the client address is
    /// the last `X-Forwarded-For` entry not itself a trusted proxy. Empty: the socket address.
    pub trusted_proxies: Cidrs,
    /// Serves `/metrics` on this address only, instead of on `listen`.
    pub metrics_listen: Option<SocketAddr>,
    /// When set, `/metrics` wants `Authorization: Bearer <token>`.
    pub metrics_token: Option<Secret>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: "http://localhost:8080".into(),
            database_url: None,
            data_dir: PathBuf::from("keyhaven-data"),
            log_format: LogFormat::Human,
            secret: None,
            sms_provider: SmsProviderKind::Log,
            voice_provider: None,
            sms_webhook_url: None,
            tyntec_base_url: "https://api.tyntec.com".into(),
            tyntec_api_key: None,
            twilio_base_url: "https://api.twilio.com".into(),
            twilio_account_sid: None,
            twilio_auth_token: None,
            twilio_from: None,
            smtp_url: None,
            email_from: "Keyhaven <no-reply@localhost>".into(),
            delivery_timeout_seconds: 10,
            delivery_max_attempts: 5,
            delivery_limit_per_recipient: 10,
            delivery_limit_per_recipient_global: 30,
            delivery_limit_per_tenant: 1000,
            delivery_limit_per_prefix: 100,
            delivery_prefix_digits: 7,
            country_allow: String::new(),
            country_deny: String::new(),
            verify_failure_limit: 10,
            verify_failure_window_seconds: 3600,
            rate_limit_calls: 100,
            rate_limit_period_seconds: 60,
            refresh_grace_seconds: 30,
            otp_resend_limit: 5,
            database_max_connections: 16,
            max_connections: 10_000,
            header_read_timeout_seconds: 10,
            body_read_timeout_seconds: 30,
            trusted_proxies: Cidrs::default(),
            metrics_listen: None,
            metrics_token: None,
        }
    }
}

/// Secrets that may also be given as `KEYHAVEN_<NAME>_FILE=/path`.
const FILE_SECRETS: &[&str] = &[
    "secret",
    "tyntec_api_key",
    "twilio_auth_token",
    "smtp_url",
    "metrics_token",
];

impl Config {
    /// Defaults → TOML file (if given) → environment.
    pub fn load(file: Option<&std::path::Path>) -> anyhow::Result<Config> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            figment = figment.merge(Toml::file_exact(path));
        }
        // Only known keys are taken from the environment (unknown ones are warned about), so a
        // stray `KEYHAVEN_*` variable can't fail `deny_unknown_fields`.
        let known = Self::known_keys();
        figment = figment.merge(
            Env::prefixed("KEYHAVEN_").filter(move |key| known.iter().any(|k| key == k.as_str())),
        );
        let mut config: Config = figment.extract()?;
        for name in FILE_SECRETS {
            let var = format!("KEYHAVEN_{}_FILE", name.to_ascii_uppercase());
            if let Ok(path) = std::env::var(&var) {
                let value = std::fs::read_to_string(&path)
                    .map_err(|e| anyhow::anyhow!("{var}: cannot read {path}: {e}"))?;
                let secret = Some(Secret(value.trim().to_string()));
                match *name {
                    "secret" => config.secret = secret,
                    "tyntec_api_key" => config.tyntec_api_key = secret,
                    "twilio_auth_token" => config.twilio_auth_token = secret,
                    "metrics_token" => config.metrics_token = secret,
                    _ => config.smtp_url = secret,
                }
            }
        }
        config.public_url = config.public_url.trim_end_matches('/').to_string();
        for (name, list) in [
            ("country_allow", &config.country_allow),
            ("country_deny", &config.country_deny),
        ] {
            if let Some(bad) = country_codes(list)
                .find(|c| c.len() != 2 || !c.chars().all(|ch| ch.is_ascii_uppercase()))
            {
                anyhow::bail!("{name}: `{bad}` is not an ISO 3166-1 alpha-2 code");
            }
        }
        Ok(config)
    }

    /// Whether numbers of `region` (ISO 3166-1 alpha-2) may receive SMS and calls.
    pub fn country_allowed(&self, region: Option<&str>) -> bool {
        let listed = |list: &str| region.is_some_and(|r| country_codes(list).any(|c| c == r));
        (self.country_allow.trim().is_empty() || listed(&self.country_allow))
            && !listed(&self.country_deny)
    }

    fn known_keys() -> Vec<String> {
        match serde_json::to_value(Config::default()) {
            Ok(serde_json::Value::Object(map)) => map.keys().cloned().collect(),
            _ => Vec::new(),
        }
    }

    /// `KEYHAVEN_*` variables that configure nothing (typos, retired names).
    pub fn unknown_env_vars() -> Vec<String> {
        let known = Self::known_keys();
        std::env::vars()
            .map(|(k, _)| k)
            .filter_map(|k| k.strip_prefix("KEYHAVEN_").map(str::to_ascii_lowercase))
            .filter(|k| !k.starts_with("test_"))
            .filter(|k| {
                let base = k.strip_suffix("_file").filter(|b| FILE_SECRETS.contains(b));
                !known.contains(k) && base.is_none()
            })
            .map(|k| format!("KEYHAVEN_{}", k.to_ascii_uppercase()))
            .collect()
    }

    /// The database URL, defaulting to a SQLite file in the data folder.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.data_dir.join("keyhaven.db").display()),
        }
    }

    pub fn voice_provider(&self) -> SmsProviderKind {
        self.voice_provider.unwrap_or(self.sms_provider)
    }
}

fn country_codes(list: &str) -> impl Iterator<Item = String> + '_ {
    list.split(',')
        .map(|c| c.trim().to_ascii_uppercase())
        .filter(|c| !c.is_empty())
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's error type
mod tests {
    use super::*;

    #[test]
    fn environment_overrides_file_and_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "k.toml",
                "listen = \"127.0.0.1:9000\"\nrate_limit_calls = 7\n",
            )?;
            jail.set_env("KEYHAVEN_RATE_LIMIT_CALLS", "11");
            jail.set_env("KEYHAVEN_SMS_PROVIDER", "webhook");
            jail.set_env("KEYHAVEN_SMS_WEBHOOK_URL", "http://127.0.0.1:1/");
            jail.set_env("KEYHAVEN_NOT_A_SETTING", "1");
            let c =
                Config::load(Some(std::path::Path::new("k.toml"))).map_err(|e| e.to_string())?;
            assert_eq!(c.listen.port(), 9000);
            assert_eq!(c.rate_limit_calls, 11);
            assert_eq!(c.sms_provider, SmsProviderKind::Webhook);
            assert_eq!(c.voice_provider(), SmsProviderKind::Webhook);
            assert_eq!(c.rate_limit_period_seconds, 60);
            assert!(Config::unknown_env_vars().contains(&"KEYHAVEN_NOT_A_SETTING".to_string()));
            Ok(())
        });
    }

    #[test]
    fn country_lists() {
        let mut c = Config::default();
        assert!(c.country_allowed(Some("DE")));
        c.country_deny = "ru, ng".into();
        assert!(!c.country_allowed(Some("RU")));
        assert!(c.country_allowed(Some("DE")));
        c.country_allow = "DE,AT".into();
        assert!(c.country_allowed(Some("AT")));
        assert!(!c.country_allowed(Some("FR")));
        assert!(
            !c.country_allowed(None),
            "an allow list admits only known countries"
        );
    }

    #[test]
    fn bad_country_codes_are_rejected() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("KEYHAVEN_COUNTRY_DENY", "RU,Russia");
            assert!(Config::load(None).is_err());
            Ok(())
        });
    }

    #[test]
    fn unknown_file_keys_are_rejected() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("k.toml", "listn = \"127.0.0.1:9000\"\n")?;
            assert!(Config::load(Some(std::path::Path::new("k.toml"))).is_err());
            Ok(())
        });
    }

    #[test]
    fn secrets_are_hidden_and_readable_from_files() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("s", "  pepper \n")?;
            jail.set_env("KEYHAVEN_SECRET_FILE", "s");
            let c = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(c.secret.as_ref().map(Secret::expose), Some("pepper"));
            assert!(!format!("{c:?}").contains("pepper"));
            Ok(())
        });
    }
}
