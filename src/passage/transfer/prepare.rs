//! One record checked and turned into the rows it becomes, with the API's own rules: emails
//! and phone numbers parsed as at sign-up, metadata against the app's schema, passkey keys
//! that webauthn-rs can verify with.

use serde_json::{Map, Value};
use webauthn_rs::prelude::{Credential, Passkey};
use webauthn_rs_core::proto::{
    AttestationFormat, ParsedAttestation, RegisteredExtensions, UserVerificationPolicy,
};

use super::{
    public_key::{self, base64url_bytes},
    record::{DeviceRecord, UserRecord},
};
use crate::{
    crypto,
    domain::{Email, PhoneNumber, UserStatus},
    passage::{
        metadata::{metadata, MetadataWriter},
        App,
    },
    storage::{PasskeyRow, User},
};

/// A record ready to write.
#[derive(Debug)]
pub struct Prepared {
    pub at: usize,
    pub user: User,
    pub passkeys: Vec<PasskeyRow>,
    /// The record named its user id (else one was made up, and an existing user with the
    /// same email or phone is the one meant).
    pub id_given: bool,
    /// The record named its creation time (else an existing user keeps theirs).
    pub created_given: bool,
}

/// The hosted service's "never".
const NEVER_PREFIX: &str = "0001-01-01";

/// The record as rows, with warnings; or the user id and why the record is skipped.
pub fn prepare(
    app: &App,
    r: UserRecord,
    at: usize,
    now: i64,
) -> Result<(Prepared, Vec<String>), (String, String)> {
    let id = if r.id.is_empty() {
        crypto::random_id()
    } else {
        r.id.clone()
    };
    let skip = |reason: String| (id.clone(), reason);
    let id_ok = id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !id_ok {
        return Err(skip("id: only letters, digits, - and _, at most 64".into()));
    }
    let mut warnings: Vec<String> = r
        .unknown_fields()
        .into_iter()
        .map(|f| format!("unknown field {f} ignored"))
        .collect();
    let email = non_empty(&r.email)
        .map(|e| Email::parse(e).map(|e| e.as_str().to_string()))
        .transpose()
        .map_err(|e| skip(format!("email: {e}")))?;
    let phone = non_empty(&r.phone)
        .map(|ph| PhoneNumber::parse(ph, None).map(|ph| ph.as_str().to_string()))
        .transpose()
        .map_err(|e| skip(format!("phone: {e}")))?;
    let status = match r.status.as_str() {
        "" => UserStatus::Active,
        s => UserStatus::parse(&s.to_ascii_lowercase())
            .ok_or_else(|| skip(format!("status: {s:?} is not active, inactive or pending")))?,
    };
    if email.is_none() && phone.is_none() && r.webauthn_devices.is_empty() {
        return Err(skip("no email, phone or passkey to log in with".into()));
    }
    let created_at = time(&r.created_at).map_err(|e| skip(format!("created_at: {e}")))?;
    let created_given = created_at.is_some();
    let created_at = created_at.unwrap_or(now);
    let last_login_at = time(&r.last_login_at).map_err(|e| skip(format!("last_login_at: {e}")))?;
    let user_metadata = fitting_metadata(app, r.user_metadata.unwrap_or_default(), &mut warnings);
    let user = User {
        id: id.clone(),
        app_id: app.id.clone(),
        email_verified: r.email_verified && email.is_some(),
        phone_verified: r.phone_verified && phone.is_some(),
        email,
        phone,
        status,
        user_metadata,
        external_id: r.external_id,
        login_count: r.login_count.max(0),
        last_login_at,
        created_at,
        updated_at: time(&r.updated_at).ok().flatten().unwrap_or(created_at),
        passkeys: 0,
    };
    let passkeys = r
        .webauthn_devices
        .iter()
        .enumerate()
        .map(|(i, d)| {
            passkey(app, &user, d, now).map_err(|e| skip(format!("webauthn_devices[{i}]: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((
        Prepared {
            at,
            user,
            passkeys,
            id_given: !r.id.is_empty(),
            created_given,
        },
        warnings,
    ))
}

fn non_empty(s: &str) -> Option<&str> {
    Some(s.trim()).filter(|s| !s.is_empty())
}

/// Epoch ms of an RFC 3339 time; none for empty or the hosted service's "never".
fn time(text: &str) -> Result<Option<i64>, String> {
    let text = text.trim();
    if text.is_empty() || text.starts_with(NEVER_PREFIX) {
        return Ok(None);
    }
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| Some(t.timestamp_millis()))
        .map_err(|_| format!("{text:?} is not an RFC 3339 time"))
}

/// The metadata fields that fit the app's schema (CSV text typed as the schema says); each
/// that does not is left out with a warning.
fn fitting_metadata(
    app: &App,
    input: Map<String, Value>,
    warnings: &mut Vec<String>,
) -> Map<String, Value> {
    let schema = &app.settings.user_metadata_schema;
    let mut kept = Map::new();
    for (name, value) in input {
        let value = match (value, schema.iter().find(|f| f.field_name == name)) {
            (Value::String(text), Some(field)) => match field.field_type.as_str() {
                "integer" => text
                    .parse::<i64>()
                    .map(Value::from)
                    .unwrap_or(Value::String(text)),
                "boolean" => text
                    .parse::<bool>()
                    .map(Value::from)
                    .unwrap_or(Value::String(text)),
                _ => Value::String(text),
            },
            (value, _) => value,
        };
        let one = Value::Object(Map::from_iter([(name.clone(), value)]));
        match metadata(schema, MetadataWriter::Admin, one, Map::new()) {
            Ok(fitted) => kept.extend(fitted),
            Err(e) => warnings.push(format!("user_metadata.{name} left out: {e}")),
        }
    }
    kept
}

/// A passkey that verifies logins as one registered here would.
fn passkey(app: &App, user: &User, d: &DeviceRecord, now: i64) -> Result<PasskeyRow, String> {
    let cred_id = base64url_bytes(&d.cred_id)
        .filter(|b| !b.is_empty() && b.len() <= 1023)
        .ok_or("cred_id is not base64url")?;
    let key = public_key::parse(&d.public_key)?;
    let user_handle = match non_empty(&d.user_handle) {
        Some(h) => base64url_bytes(h).ok_or("user_handle is not base64url")?,
        None => user.id.as_bytes().to_vec(),
    };
    let sign_count = u32::try_from(d.sign_count).map_err(|_| "sign_count is out of range")?;
    let aaguid = match non_empty(&d.aaguid) {
        Some(a) => uuid::Uuid::parse_str(a)
            .map_err(|_| "aaguid is not a UUID")?
            .to_string(),
        None => String::new(),
    };
    let credential = Credential {
        cred_id: cred_id.clone().into(),
        cred: key,
        counter: sign_count,
        transports: None,
        user_verified: true,
        backup_eligible: d.backup_eligible,
        backup_state: d.backup_state,
        registration_policy: UserVerificationPolicy::Required,
        extensions: RegisteredExtensions::none(),
        attestation: ParsedAttestation::default(),
        attestation_format: AttestationFormat::None,
    };
    let credential =
        serde_json::to_string(&Passkey::from(credential)).map_err(|e| e.to_string())?;
    let created_at = time(&d.created_at)?.unwrap_or(now);
    Ok(PasskeyRow {
        id: non_empty(&d.id).map_or_else(crypto::random_id, str::to_string),
        app_id: app.id.clone(),
        user_id: user.id.clone(),
        cred_id: crypto::base64url(&cred_id),
        user_handle: crypto::base64url(&user_handle),
        credential,
        friendly_name: non_empty(&d.friendly_name).unwrap_or("Passkey").to_string(),
        transports: d.transports.clone(),
        aaguid,
        backup_eligible: d.backup_eligible,
        backup_state: d.backup_state,
        sign_count: i64::from(sign_count),
        risk_signals: Vec::new(),
        usage_count: d.usage_count.max(0),
        last_login_at: time(&d.last_login_at)?,
        created_at,
        updated_at: created_at,
    })
}
