//! The relying party of one app: webauthn-rs configured from the app's settings, and the few
//! facts about a browser's response that the stored credential is compared against before
//! webauthn-rs verifies it.

use serde_json::Value;
use webauthn_rs::prelude::{
    AuthenticatorAttachment, CreationChallengeResponse, Credential, PublicKeyCredential,
    RegisterPublicKeyCredential, RequestChallengeResponse, Url, Webauthn, WebauthnBuilder,
};
use webauthn_rs_core::{
    internals::AuthenticatorData,
    proto::{
        Authentication, AuthenticatorSelectionCriteria, Registration, ResidentKeyRequirement,
        UserVerificationPolicy,
    },
};

use crate::{error::Error, passage::App};

/// The app's relying party: its RP ID is the host of `auth_origin`, and a ceremony's origin
/// must be `auth_origin` or one of `additional_auth_origins`.
pub fn of(app: &App) -> Result<Webauthn, Error> {
    let misconfigured =
        |what: &str| Error::Internal(anyhow::anyhow!("passkeys of app {}: {what}", app.id));
    let origin = Url::parse(&app.settings.auth_origin).map_err(|_| misconfigured("auth_origin"))?;
    let rp_id = origin
        .host_str()
        .ok_or_else(|| misconfigured("auth_origin has no host"))?;
    let mut builder = WebauthnBuilder::new(rp_id, &origin)
        .map_err(|e| misconfigured(&e.to_string()))?
        .rp_name(&app.name);
    for extra in &app.settings.additional_auth_origins {
        let url = Url::parse(extra).map_err(|_| misconfigured("additional_auth_origins"))?;
        builder = builder.append_allowed_origin(&url);
    }
    builder.build().map_err(|e| misconfigured(&e.to_string()))
}

/// Registration options as Passage sent them: the user handle is the user id's bytes, the
/// credential must be discoverable (so that login without identifier finds it), and the
/// attachment is what the client asked for (`platform`, `cross-platform` or `any`).
pub fn creation_options(
    mut ccr: CreationChallengeResponse,
    user_id: &str,
    attachment: Option<&str>,
) -> Result<Value, Error> {
    let attachment = match attachment.unwrap_or("any") {
        "platform" => Some(AuthenticatorAttachment::Platform),
        "cross-platform" => Some(AuthenticatorAttachment::CrossPlatform),
        "any" | "" => None,
        _ => {
            return Err(Error::invalid(
                "authenticator_attachment",
                "must be platform, cross-platform or any",
            ))
        }
    };
    ccr.public_key.user.id = user_id.as_bytes().to_vec().into();
    ccr.public_key.authenticator_selection = Some(AuthenticatorSelectionCriteria {
        authenticator_attachment: attachment,
        resident_key: Some(ResidentKeyRequirement::Required),
        require_resident_key: true,
        user_verification: UserVerificationPolicy::Required,
    });
    json(&ccr)
}

/// Login options: only `publicKey`, with `extensions` always present. Whether the browser
/// asks in a dialog or through autofill is the page's choice, so no `mediation` is imposed.
pub fn request_options(mut rcr: RequestChallengeResponse) -> Result<Value, Error> {
    rcr.mediation = None;
    let mut options = json(&rcr)?;
    // Passage always sent `extensions`, and its clients may expect the field.
    if let Some(public_key) = options.get_mut("publicKey").and_then(Value::as_object_mut) {
        public_key
            .entry("extensions")
            .or_insert_with(|| Value::Object(Default::default()));
    }
    Ok(options)
}

fn json(value: &impl serde::Serialize) -> Result<Value, Error> {
    serde_json::to_value(value).map_err(|e| Error::Internal(e.into()))
}

/// The browser's registration response. passage-js sends `transports` at the top level as
/// well as (or instead of) inside `response`.
pub fn registration_response(mut v: Value) -> Result<RegisterPublicKeyCredential, Error> {
    if let Some(transports) = v.get("transports").cloned() {
        if let Some(response) = v.get_mut("response").and_then(Value::as_object_mut) {
            response.entry("transports").or_insert(transports);
        }
    }
    serde_json::from_value(v).map_err(|e| {
        Error::invalid(
            "handshake_response",
            format!("not a WebAuthn registration response: {e}"),
        )
    })
}

/// The browser's login response.
pub fn login_response(v: Value) -> Result<PublicKeyCredential, Error> {
    serde_json::from_value(v).map_err(|e| {
        Error::invalid(
            "handshake_response",
            format!("not a WebAuthn login response: {e}"),
        )
    })
}

/// The transports a registration response names, as the browser spelled them.
pub fn transports(reg: &RegisterPublicKeyCredential) -> Vec<String> {
    reg.response
        .transports
        .iter()
        .flatten()
        .filter_map(|t| serde_json::to_value(t).ok())
        .filter_map(|t| t.as_str().map(str::to_string))
        .filter(|t| t != "unknown")
        .collect()
}

/// The AAGUID (authenticator model) in a registration's attestation object; empty when the
/// response carries none.
pub fn aaguid(reg: &RegisterPublicKeyCredential) -> String {
    let attestation: Option<serde_cbor_2::Value> =
        serde_cbor_2::from_slice(reg.response.attestation_object.as_slice()).ok();
    let auth_data = match attestation {
        Some(serde_cbor_2::Value::Map(map)) => map
            .into_iter()
            .find(|(k, _)| *k == serde_cbor_2::Value::Text("authData".into()))
            .and_then(|(_, v)| match v {
                serde_cbor_2::Value::Bytes(b) => Some(b),
                _ => None,
            }),
        _ => None,
    };
    auth_data
        .and_then(|b| AuthenticatorData::<Registration>::try_from(b.as_slice()).ok())
        .and_then(|d| d.acd)
        .map(|acd| uuid::Uuid::from_bytes(acd.aaguid).to_string())
        .unwrap_or_default()
}

/// What a login response says that may differ from the stored credential: its sign counter
/// and backup eligibility (read from the authenticator data; its signature is checked after).
#[derive(Debug, Clone, Copy)]
pub struct Presented {
    pub counter: u32,
    pub backup_eligible: bool,
}

impl Presented {
    pub fn of(login: &PublicKeyCredential) -> Result<Presented, Error> {
        let data = AuthenticatorData::<Authentication>::try_from(
            login.response.authenticator_data.as_slice(),
        )
        .map_err(|_| Error::invalid("handshake_response", "unreadable authenticator data"))?;
        Ok(Presented {
            counter: data.counter,
            backup_eligible: data.backup_eligible,
        })
    }

    /// A counter that did not move forward: two copies of the key may be in use. A zero
    /// counter on both sides is normal (synced passkeys keep none).
    pub fn counter_regressed(&self, stored: &Credential) -> bool {
        (self.counter > 0 || stored.counter > 0) && self.counter <= stored.counter
    }

    pub fn backup_eligibility_changed(&self, stored: &Credential) -> bool {
        self.backup_eligible != stored.backup_eligible
    }

    /// The stored credential as webauthn-rs should check this login against it once the
    /// signals are recorded and accepted: webauthn-rs refuses both signals outright.
    pub fn tolerated(&self, mut stored: Credential) -> Credential {
        if self.counter_regressed(&stored) {
            stored.counter = 0;
        }
        stored.backup_eligible = self.backup_eligible;
        stored
    }
}
