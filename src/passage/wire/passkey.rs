//! Passkey ceremonies and devices: the `handshake` a start answers, the browser's response a
//! finish carries, and the device (credential) object.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{user::iso_or_never, UserObject};
use crate::{domain::iso_ms, storage::PasskeyRow};

/// A started ceremony: its id and the WebAuthn options (`{"publicKey": {...}}`) for the
/// browser, base64url fields without padding.
#[derive(Debug, Serialize)]
pub struct Handshake {
    pub id: String,
    pub challenge: Value,
}

/// `{"handshake", "user"}`: the answer of every ceremony start (`user` when one is known).
#[derive(Debug, Serialize)]
pub struct HandshakeResponse {
    pub handshake: Handshake,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<UserObject>,
}

/// `register/webauthn/start`.
#[derive(Debug, Deserialize)]
pub struct RegisterPasskeyRequest {
    pub identifier: String,
    pub authenticator_attachment: Option<String>,
}

/// `login/webauthn/start`: without identifier, a login with a discoverable credential.
#[derive(Debug, Default, Deserialize)]
pub struct PasskeyLoginRequest {
    #[serde(default)]
    pub identifier: String,
}

/// `currentuser/devices/start`.
#[derive(Debug, Default, Deserialize)]
pub struct AddDeviceRequest {
    pub authenticator_attachment: Option<String>,
}

/// Every ceremony finish: the handshake, the browser's PublicKeyCredential as JSON, and the
/// user (absent in a login without identifier).
#[derive(Debug, Deserialize)]
pub struct FinishCeremonyRequest {
    pub handshake_id: String,
    pub handshake_response: Value,
    #[serde(default)]
    pub user_id: String,
}

/// `PATCH currentuser/devices/{device_id}`.
#[derive(Debug, Deserialize)]
pub struct RenameDeviceRequest {
    pub friendly_name: String,
}

/// `{"device": ...}`.
#[derive(Debug, Serialize)]
pub struct DeviceResponse {
    pub device: Device,
}

/// A passkey as the device lists show it, with what Keyhaven records besides: transports,
/// authenticator model, backup flags and the risk signals its logins raised.
#[derive(Debug, Clone, Serialize)]
pub struct Device {
    id: String,
    cred_id: String,
    friendly_name: String,
    created_at: String,
    updated_at: String,
    last_login_at: String,
    usage_count: i64,
    #[serde(rename = "type")]
    kind: &'static str,
    user_id: String,
    icons: Icons,
    transports: Vec<String>,
    aaguid: String,
    backup_eligible: bool,
    backup_state: bool,
    risk_signals: Vec<String>,
}

/// Brand icons of the authenticator: none are known, so empty.
#[derive(Debug, Clone, Default, Serialize)]
struct Icons {
    light: String,
    dark: String,
}

impl From<PasskeyRow> for Device {
    fn from(k: PasskeyRow) -> Device {
        Device {
            id: k.id,
            cred_id: k.cred_id,
            friendly_name: k.friendly_name,
            created_at: iso_ms(k.created_at),
            updated_at: iso_ms(k.updated_at),
            last_login_at: iso_or_never(k.last_login_at),
            usage_count: k.usage_count,
            kind: "passkey",
            user_id: k.user_id,
            icons: Icons::default(),
            transports: k.transports,
            aaguid: k.aaguid,
            backup_eligible: k.backup_eligible,
            backup_state: k.backup_state,
            risk_signals: k.risk_signals,
        }
    }
}
