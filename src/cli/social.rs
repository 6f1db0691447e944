//! `keyhaven app social set|delete`: an app's social login providers.

use std::path::PathBuf;

use clap::Subcommand;
use serde_json::{json, Value};

use crate::passage::{
    social::connections::{self, ConnectionSettings},
    Passage,
};

// Parsed once per run: the size of a variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
pub enum SocialCommand {
    /// Create or replace a social connection. TYPE is google, github, apple or any other name
    /// for a generic provider: OpenID Connect with --issuer, else plain OAuth 2.0 with the
    /// three endpoint URLs. The provider's redirect URI to register is
    /// {public URL}/v1/apps/{app_id}/social/oauth2_callback.
    Set {
        #[arg(long = "app")]
        app_id: String,
        #[arg(long = "type")]
        connection_type: String,
        #[arg(long)]
        client_id: String,
        /// Not needed for apple, whose secret is minted from the private key.
        #[arg(long, default_value = "")]
        client_secret: String,
        #[arg(long, default_value = "")]
        issuer: String,
        #[arg(long, default_value = "")]
        authorize_url: String,
        #[arg(long, default_value = "")]
        token_url: String,
        #[arg(long, default_value = "")]
        userinfo_url: String,
        #[arg(long, default_value = "")]
        apple_team_id: String,
        #[arg(long, default_value = "")]
        apple_key_id: String,
        /// The Sign in with Apple key (.p8, PEM).
        #[arg(long)]
        apple_private_key_file: Option<PathBuf>,
    },
    /// Remove a social connection (users keep their links).
    Delete {
        #[arg(long = "app")]
        app_id: String,
        #[arg(long = "type")]
        connection_type: String,
    },
}

/// `app social set|delete`.
pub async fn run(passage: &Passage, command: SocialCommand) -> anyhow::Result<Value> {
    Ok(match command {
        SocialCommand::Set {
            app_id,
            connection_type,
            client_id,
            client_secret,
            issuer,
            authorize_url,
            token_url,
            userinfo_url,
            apple_team_id,
            apple_key_id,
            apple_private_key_file,
        } => {
            let apple_private_key = match apple_private_key_file {
                Some(path) => std::fs::read_to_string(&path)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?,
                None => String::new(),
            };
            let settings = ConnectionSettings {
                client_id,
                client_secret,
                issuer,
                authorize_url,
                token_url,
                userinfo_url,
                apple_team_id,
                apple_key_id,
                apple_private_key,
            };
            let app = passage.app(&app_id).await?;
            connections::set(passage, &app.id, &connection_type, settings).await?;
            json!({"app_id": app.id, "social_connections": connections::describe(passage, &app).await?})
        }
        SocialCommand::Delete {
            app_id,
            connection_type,
        } => {
            let app = passage.app(&app_id).await?;
            connections::remove(passage, &app.id, &connection_type).await?;
            json!({"app_id": app.id, "deleted": connection_type})
        }
    })
}
