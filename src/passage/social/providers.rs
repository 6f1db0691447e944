//! The provider side of a social login (openidconnect / oauth2 do the protocol): the
//! authorization URL with Keyhaven's own PKCE, state and nonce, and the code exchange that
//! yields who the person is at the provider — from a verified ID token (OpenID Connect) or
//! from the userinfo endpoint (GitHub, plain OAuth 2.0).

use std::{sync::Arc, time::Duration};

use oauth2::basic::BasicClient;
use openidconnect::{
    core::{
        CoreAuthenticationFlow, CoreClient, CoreClientAuthMethod, CoreIdTokenVerifier,
        CoreJwsSigningAlgorithm, CoreProviderMetadata,
    },
    AuthType, AuthUrl, AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret,
    CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier,
    RedirectUrl, RequestTokenError, Scope, SignatureVerificationError, TokenResponse, TokenUrl,
};
use serde::Deserialize;
use serde_json::Value;
use url::Url;

use super::{apple, connections::Connection};
use crate::{domain::now_ms, ttl_cache::TtlCache};

/// How long a provider's discovery document (and its keys) is reused; an ID token signed
/// with a key it does not list fetches it again at once.
const DISCOVERY_TTL: Duration = Duration::from_secs(600);
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);

/// Who the person is at the provider.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct Identity {
    /// The provider's stable id of the person (OIDC `sub`, GitHub's numeric id).
    pub provider_id: String,
    pub email: Option<String>,
    /// The provider vouches for the email.
    pub email_verified: bool,
}

/// A failed exchange with the provider, as the app's redirect reports it.
#[derive(Debug, Clone)]
pub struct ProviderError {
    /// An OAuth 2.0 error code (`access_denied`, `invalid_grant`, `server_error`, ...).
    pub error: String,
    pub description: String,
}

impl ProviderError {
    fn new(error: &str, description: impl Into<String>) -> Self {
        ProviderError {
            error: error.to_string(),
            description: description.into(),
        }
    }

    fn unreachable(what: &str, e: impl std::fmt::Display) -> Self {
        ProviderError::new("server_error", format!("the provider's {what} failed: {e}"))
    }
}

/// The authorization request Keyhaven sends the person to.
#[derive(Debug)]
pub struct Authorization {
    pub url: Url,
    /// Keyhaven's own PKCE verifier, kept for the exchange.
    pub verifier: String,
    pub nonce: String,
}

/// The HTTP client and the discovery documents every social login shares.
#[derive(Debug)]
pub struct Providers {
    http: reqwest::Client,
    discovered: TtlCache<Arc<CoreProviderMetadata>>,
}

impl Default for Providers {
    fn default() -> Self {
        let http = reqwest::Client::builder()
            // Following a provider's redirects would let it point Keyhaven anywhere.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(PROVIDER_TIMEOUT)
            // GitHub refuses API calls without one.
            .user_agent(concat!("keyhaven/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Providers {
            http,
            discovered: TtlCache::new(DISCOVERY_TTL),
        }
    }
}

impl Providers {
    /// Where to send the person: the provider's authorization endpoint with `state`, a fresh
    /// PKCE challenge and (OpenID Connect) a fresh nonce; `callback` is Keyhaven's redirect URI.
    pub async fn authorize(
        &self,
        c: &Connection,
        callback: &str,
        state: &str,
    ) -> Result<Authorization, ProviderError> {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let nonce = Nonce::new_random();
        let state = CsrfToken::new(state.to_string());
        let redirect = redirect_url(callback)?;
        let url = if c.provider.issuer.is_empty() {
            let scopes: &[&str] = if c.provider.is_github() {
                &["read:user", "user:email"]
            } else {
                &["openid", "email"]
            };
            let (url, _) = oauth2_client(c)?
                .set_redirect_uri(redirect)
                .authorize_url(|| state)
                .add_scopes(scopes.iter().map(|s| Scope::new(s.to_string())))
                .set_pkce_challenge(challenge)
                .url();
            url
        } else {
            let metadata = self.discover(&c.provider.issuer, false).await?;
            let client = CoreClient::from_provider_metadata(
                (*metadata).clone(),
                ClientId::new(c.provider.client_id.clone()),
                None,
            )
            .set_redirect_uri(redirect);
            let expected_nonce = nonce.clone();
            let mut request = client
                .authorize_url(
                    CoreAuthenticationFlow::AuthorizationCode,
                    || state,
                    || expected_nonce,
                )
                .add_scope(Scope::new("email".into()))
                .set_pkce_challenge(challenge);
            if c.provider.is_apple() {
                // Apple sends the name and email scopes' answer only by form POST.
                request = request
                    .add_scope(Scope::new("name".into()))
                    .add_extra_param("response_mode", "form_post");
            }
            let (url, _, _) = request.url();
            url
        };
        Ok(Authorization {
            url,
            verifier: verifier.secret().clone(),
            nonce: nonce.secret().clone(),
        })
    }

    /// Exchanges the provider's `code` (with the PKCE `verifier`) and says who the person is.
    pub async fn identify(
        &self,
        c: &Connection,
        callback: &str,
        code: &str,
        verifier: &str,
        nonce: &str,
    ) -> Result<Identity, ProviderError> {
        let redirect = redirect_url(callback)?;
        let code = AuthorizationCode::new(code.to_string());
        let verifier = PkceCodeVerifier::new(verifier.to_string());
        if c.provider.issuer.is_empty() {
            let token = oauth2_client(c)?
                .set_redirect_uri(redirect)
                .exchange_code(code)
                .set_pkce_verifier(verifier)
                .request_async(&self.http)
                .await
                .map_err(token_error)?;
            return self.userinfo(c, token.access_token().secret()).await;
        }

        let metadata = self.discover(&c.provider.issuer, false).await?;
        let secret = if c.provider.is_apple() {
            apple::client_secret(&c.provider, &c.secret, now_ms() / 1000)
                .map_err(|e| ProviderError::new("server_error", format!("Apple key {e}")))?
        } else {
            c.secret.clone()
        };
        let mut client = CoreClient::from_provider_metadata(
            (*metadata).clone(),
            ClientId::new(c.provider.client_id.clone()),
            Some(ClientSecret::new(secret)),
        )
        .set_redirect_uri(redirect);
        let methods = metadata.token_endpoint_auth_methods_supported();
        let basic = methods.is_none_or(|m| m.contains(&CoreClientAuthMethod::ClientSecretBasic));
        if !basic || c.provider.is_apple() {
            client = client.set_auth_type(AuthType::RequestBody);
        }
        let token = client
            .exchange_code(code)
            .map_err(|e| ProviderError::new("server_error", e.to_string()))?
            .set_pkce_verifier(verifier)
            .request_async(&self.http)
            .await
            .map_err(token_error)?;
        let id_token = token.id_token().ok_or_else(|| {
            ProviderError::new("invalid_grant", "the provider's answer holds no ID token")
        })?;
        let nonce = Nonce::new(nonce.to_string());
        let mut metadata = metadata;
        for refreshed in [false, true] {
            if refreshed {
                metadata = self.discover(&c.provider.issuer, true).await?;
            }
            match id_token.claims(&id_token_verifier(c, &metadata), &nonce) {
                Ok(claims) => {
                    return Ok(Identity {
                        provider_id: claims.subject().to_string(),
                        email: claims.email().map(|e| e.to_string()),
                        email_verified: claims.email_verified().unwrap_or(false),
                    })
                }
                // A key the cached document does not list: the provider rotated its keys.
                Err(ClaimsVerificationError::SignatureVerification(
                    SignatureVerificationError::NoMatchingKey,
                )) if !refreshed => {}
                Err(e) => {
                    return Err(ProviderError::new(
                        "invalid_grant",
                        format!("the ID token was refused: {e}"),
                    ))
                }
            }
        }
        Err(ProviderError::new(
            "invalid_grant",
            "the ID token is signed with an unknown key",
        ))
    }

    /// The provider's discovery document (with its keys), fetched again when `refresh`.
    async fn discover(
        &self,
        issuer: &str,
        refresh: bool,
    ) -> Result<Arc<CoreProviderMetadata>, ProviderError> {
        if !refresh {
            if let Some((metadata, _)) = self.discovered.get(issuer) {
                return Ok(metadata);
            }
        }
        let issuer_url = IssuerUrl::new(issuer.to_string())
            .map_err(|e| ProviderError::unreachable("issuer", e))?;
        let metadata = CoreProviderMetadata::discover_async(issuer_url, &self.http)
            .await
            .map_err(|e| ProviderError::unreachable("discovery", e))?;
        let metadata = Arc::new(metadata);
        self.discovered.insert(issuer, metadata.clone());
        Ok(metadata)
    }

    /// GitHub's user and its emails, or a plain OAuth 2.0 provider's userinfo.
    async fn userinfo(
        &self,
        c: &Connection,
        access_token: &str,
    ) -> Result<Identity, ProviderError> {
        let get = |url: String| async move {
            self.http
                .get(&url)
                .bearer_auth(access_token)
                .header(reqwest::header::ACCEPT, "application/json")
                .send()
                .await
                .and_then(reqwest::Response::error_for_status)
                .map_err(|e| ProviderError::unreachable("userinfo endpoint", e))?
                .json::<Value>()
                .await
                .map_err(|e| ProviderError::unreachable("userinfo endpoint", e))
        };
        let user = get(c.provider.userinfo_url.clone()).await?;
        let provider_id = match user.get("sub").or_else(|| user.get("id")) {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => {
                return Err(ProviderError::new(
                    "server_error",
                    "the provider's userinfo names no user id",
                ))
            }
        };
        if c.provider.is_github() {
            // The profile's email is whatever the person made public: the verified primary
            // address is in the emails list.
            #[derive(Deserialize)]
            struct GithubEmail {
                email: String,
                #[serde(default)]
                primary: bool,
                #[serde(default)]
                verified: bool,
            }
            let url = format!("{}/emails", c.provider.userinfo_url.trim_end_matches('/'));
            let emails: Vec<GithubEmail> = serde_json::from_value(get(url).await?)
                .map_err(|e| ProviderError::unreachable("emails endpoint", e))?;
            let primary = emails.into_iter().find(|e| e.primary && e.verified);
            return Ok(Identity {
                provider_id,
                email_verified: primary.is_some(),
                email: primary.map(|e| e.email),
            });
        }
        let email = user
            .get("email")
            .and_then(Value::as_str)
            .map(str::to_string);
        let email_verified = match user.get("email_verified") {
            Some(Value::Bool(verified)) => *verified,
            Some(Value::String(verified)) => verified == "true",
            _ => false,
        };
        Ok(Identity {
            provider_id,
            email,
            email_verified,
        })
    }
}

fn redirect_url(callback: &str) -> Result<RedirectUrl, ProviderError> {
    RedirectUrl::new(callback.to_string())
        .map_err(|e| ProviderError::new("server_error", format!("callback URL: {e}")))
}

type OAuth2Client = BasicClient<
    oauth2::EndpointSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointSet,
>;

/// A plain OAuth 2.0 client of the connection's endpoints. GitHub takes the client
/// credentials in the request body.
fn oauth2_client(c: &Connection) -> Result<OAuth2Client, ProviderError> {
    let bad = |e: url::ParseError| ProviderError::new("server_error", format!("endpoint: {e}"));
    let client = BasicClient::new(ClientId::new(c.provider.client_id.clone()))
        .set_client_secret(ClientSecret::new(c.secret.clone()))
        .set_auth_uri(AuthUrl::new(c.provider.authorize_url.clone()).map_err(bad)?)
        .set_token_uri(TokenUrl::new(c.provider.token_url.clone()).map_err(bad)?);
    Ok(if c.provider.is_github() {
        client.set_auth_type(AuthType::RequestBody)
    } else {
        client
    })
}

/// ID tokens are checked with the provider's published keys and only with the asymmetric
/// algorithms its discovery document lists: never `none`, never an HMAC keyed with
/// something public.
fn id_token_verifier<'a>(
    c: &Connection,
    metadata: &'a CoreProviderMetadata,
) -> CoreIdTokenVerifier<'a> {
    let listed = metadata
        .id_token_signing_alg_values_supported()
        .iter()
        .filter(|alg| {
            !matches!(
                alg,
                CoreJwsSigningAlgorithm::None
                    | CoreJwsSigningAlgorithm::HmacSha256
                    | CoreJwsSigningAlgorithm::HmacSha384
                    | CoreJwsSigningAlgorithm::HmacSha512
            )
        })
        .cloned()
        .collect::<Vec<_>>();
    CoreIdTokenVerifier::new_public_client(
        ClientId::new(c.provider.client_id.clone()),
        metadata.issuer().clone(),
        metadata.jwks().clone(),
    )
    .set_allowed_algs(listed)
}

/// The provider's refusal of a code exchange. GitHub answers errors with HTTP 200 and an
/// `error` field, which reaches here as an unparsable token response.
fn token_error<RE: std::error::Error + 'static, T: oauth2::ErrorResponse + 'static>(
    e: RequestTokenError<RE, T>,
) -> ProviderError {
    #[derive(Deserialize)]
    struct OAuthError {
        error: String,
        #[serde(default)]
        error_description: String,
    }
    match e {
        RequestTokenError::ServerResponse(r) => {
            let body = serde_json::to_value(&r).unwrap_or_default();
            match serde_json::from_value::<OAuthError>(body) {
                Ok(o) => ProviderError::new(&o.error, o.error_description),
                Err(_) => ProviderError::new("invalid_grant", r.to_string()),
            }
        }
        RequestTokenError::Parse(_, body) => match serde_json::from_slice::<OAuthError>(&body) {
            Ok(o) => ProviderError::new(&o.error, o.error_description),
            Err(e) => ProviderError::unreachable("token endpoint", e),
        },
        RequestTokenError::Request(e) => ProviderError::unreachable("token endpoint", e),
        RequestTokenError::Other(e) => ProviderError::unreachable("token endpoint", e),
    }
}
