//! An app's social connections: the providers its users log in with, as an operator sets
//! them (CLI or API key). Google, GitHub and Apple have their real endpoints as defaults;
//! any other name is a generic provider, OpenID Connect by issuer or plain OAuth 2.0 by
//! endpoint URLs. The client secret (Apple: the private key) is sealed at rest and never
//! returned.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use url::Url;

use super::super::{App, Passage};
use crate::{
    domain::now_ms,
    error::{Error, Resource},
    storage::SocialConnectionRow,
};

pub const GOOGLE: &str = "google";
pub const GITHUB: &str = "github";
pub const APPLE: &str = "apple";

const GOOGLE_ISSUER: &str = "https://accounts.google.com";
const APPLE_ISSUER: &str = "https://appleid.apple.com";
const GITHUB_AUTHORIZE: &str = "https://github.com/login/oauth/authorize";
const GITHUB_TOKEN: &str = "https://github.com/login/oauth/access_token";
const GITHUB_USERINFO: &str = "https://api.github.com/user";

/// A connection as an operator writes it: `app social set` flags, or the JSON body of
/// `PUT /v1/apps/{app_id}/social-connections/{type}`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConnectionSettings {
    pub client_id: String,
    pub client_secret: String,
    pub issuer: String,
    pub authorize_url: String,
    pub token_url: String,
    pub userinfo_url: String,
    pub apple_team_id: String,
    pub apple_key_id: String,
    /// PEM (PKCS#8) of the Sign in with Apple key.
    pub apple_private_key: String,
}

/// How Keyhaven talks to a provider: the stored settings, defaults applied.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Provider {
    pub connection_type: String,
    pub client_id: String,
    /// OpenID Connect issuer; empty for plain OAuth 2.0.
    pub issuer: String,
    pub authorize_url: String,
    pub token_url: String,
    pub userinfo_url: String,
    pub apple_team_id: String,
    pub apple_key_id: String,
}

/// A configured provider with its secret, ready for a login.
#[derive(Debug, Clone)]
pub struct Connection {
    pub provider: Provider,
    /// The client secret; for Apple, the private key PEM.
    pub secret: String,
}

impl Provider {
    pub fn is_github(&self) -> bool {
        self.connection_type == GITHUB
    }

    pub fn is_apple(&self) -> bool {
        self.connection_type == APPLE
    }
}

fn sealing_context(app_id: &str, connection_type: &str) -> String {
    format!("social:{app_id}:{connection_type}")
}

/// Creates or replaces the app's connection `connection_type`; true when it is new.
pub async fn set(
    p: &Passage,
    app_id: &str,
    connection_type: &str,
    settings: ConnectionSettings,
) -> Result<bool, Error> {
    let connection = validate(connection_type, settings)?;
    let now = now_ms();
    let row = SocialConnectionRow {
        app_id: app_id.to_string(),
        connection_type: connection_type.to_string(),
        settings: serde_json::to_string(&connection.provider)
            .map_err(|e| Error::Internal(e.into()))?,
        secret_sealed: p.keys.seal(
            &sealing_context(app_id, connection_type),
            &connection.secret,
        )?,
        created_at: now,
        updated_at: now,
    };
    p.store.put_social_connection(&row).await
}

/// Removes the app's connection `connection_type`.
pub async fn remove(p: &Passage, app_id: &str, connection_type: &str) -> Result<(), Error> {
    if p.store
        .delete_social_connection(app_id, connection_type)
        .await?
    {
        Ok(())
    } else {
        Err(Error::NotFound(Resource::SocialConnection))
    }
}

fn provider_of(row: &SocialConnectionRow) -> Result<Provider, Error> {
    serde_json::from_str(&row.settings)
        .map_err(|e| Error::Internal(anyhow::anyhow!("stored social connection: {e}")))
}

/// The app's connection `connection_type`, which a login asks for by name, with its secret.
pub async fn named(p: &Passage, app: &App, connection_type: &str) -> Result<Connection, Error> {
    let rows = p.store.social_connections(&app.id).await?;
    let row = rows
        .iter()
        .find(|row| row.connection_type == connection_type)
        .ok_or_else(|| {
            Error::invalid(
                "connection_type",
                format!("{connection_type:?} is not a social connection of this app"),
            )
        })?;
    let secret = p.keys.open(
        &sealing_context(&row.app_id, &row.connection_type),
        &row.secret_sealed,
    )?;
    Ok(Connection {
        provider: provider_of(row)?,
        secret,
    })
}

/// The App object's `social_connections`: `{type: {client_id}}`.
pub async fn describe(p: &Passage, app: &App) -> Result<Map<String, Value>, Error> {
    let rows = p.store.social_connections(&app.id).await?;
    rows.iter()
        .map(|row| {
            let provider = provider_of(row)?;
            let client_id = json!({ "client_id": provider.client_id });
            Ok((provider.connection_type, client_id))
        })
        .collect()
}

fn validate(connection_type: &str, s: ConnectionSettings) -> Result<Connection, Error> {
    let name_ok = !connection_type.is_empty()
        && connection_type.len() <= 40
        && connection_type
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if !name_ok || connection_type == "passage" {
        return Err(Error::invalid(
            "connection_type",
            "must be google, github, apple or a name of lower-case letters, digits, _ and -",
        ));
    }
    if s.client_id.trim().is_empty() {
        return Err(Error::invalid("client_id", "is required"));
    }
    let mut provider = Provider {
        connection_type: connection_type.to_string(),
        client_id: s.client_id.trim().to_string(),
        issuer: s.issuer.trim_end_matches('/').to_string(),
        authorize_url: s.authorize_url,
        token_url: s.token_url,
        userinfo_url: s.userinfo_url,
        apple_team_id: s.apple_team_id,
        apple_key_id: s.apple_key_id,
    };
    let endpoints_given = !(provider.authorize_url.is_empty()
        && provider.token_url.is_empty()
        && provider.userinfo_url.is_empty());
    let default_issuer = match connection_type {
        GOOGLE => GOOGLE_ISSUER,
        APPLE => APPLE_ISSUER,
        _ => "",
    };
    if provider.issuer.is_empty() && !endpoints_given {
        provider.issuer = default_issuer.to_string();
    }
    if connection_type == GITHUB && provider.issuer.is_empty() {
        for (url, default) in [
            (&mut provider.authorize_url, GITHUB_AUTHORIZE),
            (&mut provider.token_url, GITHUB_TOKEN),
            (&mut provider.userinfo_url, GITHUB_USERINFO),
        ] {
            if url.is_empty() {
                *url = default.to_string();
            }
        }
    }
    if provider.issuer.is_empty() {
        for (field, url) in [
            ("authorize_url", &provider.authorize_url),
            ("token_url", &provider.token_url),
            ("userinfo_url", &provider.userinfo_url),
        ] {
            if url.is_empty() {
                return Err(Error::invalid(
                    field,
                    "is required for a provider without issuer (plain OAuth 2.0)",
                ));
            }
            check_url(field, url)?;
        }
    } else {
        check_url("issuer", &provider.issuer)?;
    }
    let secret = if connection_type == APPLE {
        if provider.apple_team_id.is_empty() || provider.apple_key_id.is_empty() {
            return Err(Error::invalid(
                "apple_team_id",
                "Apple needs the team id, the key id and the private key",
            ));
        }
        super::apple::client_secret(&provider, &s.apple_private_key, now_ms() / 1000)
            .map_err(|e| Error::invalid("apple_private_key", e))?;
        s.apple_private_key
    } else {
        s.client_secret
    };
    if secret.is_empty() {
        return Err(Error::invalid("client_secret", "is required"));
    }
    Ok(Connection { provider, secret })
}

/// Providers are reached over HTTPS; a provider on this machine (a loopback host) may use
/// plain HTTP.
fn check_url(field: &'static str, url: &str) -> Result<(), Error> {
    let parsed = Url::parse(url).map_err(|e| Error::invalid(field, format!("{url:?}: {e}")))?;
    let loopback = match parsed.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    };
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(Error::invalid(
            field,
            "must be an https URL (http only for a loopback host)",
        )),
    }
}
