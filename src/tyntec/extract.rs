//! Request extractors of the tyntec surface: the API key, and parameters that arrive either as
//! query parameters (the Power Platform connector) or as a JSON body (direct API users).

use std::collections::HashMap;

use axum::{
    body::Bytes,
    extract::{FromRequest, FromRequestParts, Request},
    http::request::Parts,
};
use serde::de::DeserializeOwned;

use super::error::TyntecError;
use crate::{client_address::ClientAddress, crypto, error::Error, state::AppState};

/// The account behind the request's API key (`apiKey` header, any case, or `apiKey` query
/// parameter). Also applies the per-key throttle.
#[derive(Debug, Clone)]
pub struct ApiKey {
    pub account_id: String,
}

impl FromRequestParts<AppState> for ApiKey {
    type Rejection = TyntecError;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, Self::Rejection> {
        let from_header = parts
            .headers
            .get("apikey")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let key = from_header.or_else(|| {
            query_pairs(parts.uri.query())
                .into_iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("apikey"))
                .map(|(_, v)| v)
        });
        let digest = key.map(|k| crypto::sha256(k.trim()));
        let account = match &digest {
            Some(digest) => s.api_keys.account(&s.store, digest).await?,
            None => None,
        };
        let (Some(account_id), Some(digest)) = (account, digest) else {
            // Failed attempts count against the client's address: guessing keys is throttled
            // like any other use.
            if let Some(client) = parts.extensions.get::<ClientAddress>() {
                s.limits.request(&format!("ip:{}", client.bucket())).await?;
            }
            return Err(Error::Unauthenticated.into());
        };
        s.limits
            .request(&format!("key:{}", hex::encode(&digest[..12])))
            .await?;
        Ok(ApiKey { account_id })
    }
}

crate::http::rejecting_extractor!(Path, "path", TyntecError);

fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

/// Parameters from the query string and, when present, a flat JSON object body; names are
/// matched without regard to case (the connector sends `Sender`, the API documents `sender`),
/// and numbers or booleans in JSON are taken as their text (the connector types `otpCode` as
/// an integer). The query wins over the body.
#[derive(Debug, Default)]
pub struct Params(HashMap<String, String>);

impl Params {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }

    pub fn parse<T>(
        &self,
        name: &'static str,
        parse: impl FnOnce(&str) -> Result<T, Error>,
    ) -> Result<Option<T>, Error> {
        self.get(name).map(parse).transpose()
    }

    pub fn int(&self, name: &'static str) -> Result<Option<i64>, Error> {
        self.parse(name, |v| {
            v.trim()
                .parse()
                .map_err(|_| Error::invalid(name, "expected an integer"))
        })
    }
}

impl FromRequest<AppState> for Params {
    type Rejection = TyntecError;

    async fn from_request(req: Request, s: &AppState) -> Result<Self, Self::Rejection> {
        let mut params = HashMap::new();
        let has_json = crate::http::is_json(req.headers());
        let query = req.uri().query().map(str::to_string);
        let bytes = Bytes::from_request(req, s).await.map_err(body_error)?;
        if !bytes.iter().all(u8::is_ascii_whitespace) {
            if !has_json {
                return Err(unsupported_media_type());
            }
            let value: serde_json::Value = serde_json::from_slice(&bytes)
                .map_err(|e| Error::invalid("body", format!("malformed JSON: {e}")))?;
            let serde_json::Value::Object(map) = value else {
                return Err(Error::invalid("body", "expected a JSON object").into());
            };
            for (k, v) in map {
                let text = match v {
                    serde_json::Value::String(s) => s,
                    serde_json::Value::Null => continue,
                    serde_json::Value::Number(n) => n.to_string(),
                    serde_json::Value::Bool(b) => b.to_string(),
                    _ => {
                        return Err(Error::invalid("body", format!("`{k}` must be a scalar")).into())
                    }
                };
                params.insert(k.to_ascii_lowercase(), text);
            }
        }
        for (k, v) in query_pairs(query.as_deref()) {
            params.insert(k.to_ascii_lowercase(), v);
        }
        Ok(Params(params))
    }
}

/// A typed JSON body with tyntec-shaped errors for a wrong content type or malformed JSON.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = TyntecError;

    async fn from_request(req: Request, s: &AppState) -> Result<Self, Self::Rejection> {
        let has_json = crate::http::is_json(req.headers());
        let bytes = Bytes::from_request(req, s).await.map_err(body_error)?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(Error::invalid("body", "a JSON object is required").into());
        }
        if !has_json {
            return Err(unsupported_media_type());
        }
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| Error::invalid("body", e.to_string()).into())
    }
}

fn unsupported_media_type() -> TyntecError {
    TyntecError(Error::UnsupportedMediaType)
}

fn body_error(e: axum::extract::rejection::BytesRejection) -> TyntecError {
    TyntecError(crate::http::body_rejection(e))
}
