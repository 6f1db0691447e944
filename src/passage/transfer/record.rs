//! The import and export record: one Manage API user object, with in `webauthn_devices` what
//! a passkey needs to keep working (credential id, public key, counter, flags, user handle).
//! Files are a JSON array, one object per line, or the console's CSV template.

use std::io::BufRead;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A user as exported.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct UserRecord {
    pub id: String,
    pub email: String,
    pub phone: String,
    pub email_verified: bool,
    pub phone_verified: bool,
    pub status: String,
    pub user_metadata: Option<Map<String, Value>>,
    pub external_id: String,
    pub created_at: String,
    pub updated_at: String,
    pub last_login_at: String,
    pub login_count: i64,
    pub webauthn_devices: Vec<DeviceRecord>,
    /// Fields this format does not read; reported as warnings.
    #[serde(flatten, skip_serializing)]
    pub other: Map<String, Value>,
}

/// A passkey as exported.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct DeviceRecord {
    pub id: String,
    /// base64url, padded or not.
    pub cred_id: String,
    /// base64url COSE_Key bytes, or a PEM SPKI.
    pub public_key: String,
    pub sign_count: i64,
    pub transports: Vec<String>,
    pub friendly_name: String,
    pub created_at: String,
    pub last_login_at: String,
    pub backup_eligible: bool,
    pub backup_state: bool,
    pub aaguid: String,
    /// base64url; the user id's UTF-8 bytes when absent.
    pub user_handle: String,
    pub usage_count: i64,
    #[serde(flatten, skip_serializing)]
    pub other: Map<String, Value>,
}

/// Manage API fields an export carries that the import has no use for: not worth a warning.
const IGNORED_USER_FIELDS: [&str; 4] = [
    "recent_events",
    "social_connections",
    "webauthn",
    "webauthn_types",
];
const IGNORED_DEVICE_FIELDS: [&str; 4] = ["type", "updated_at", "icons", "usage"];

impl UserRecord {
    /// The names of the fields this format does not know.
    pub fn unknown_fields(&self) -> Vec<String> {
        let mut unknown: Vec<String> = self
            .other
            .keys()
            .filter(|k| !IGNORED_USER_FIELDS.contains(&k.as_str()))
            .cloned()
            .collect();
        for (i, d) in self.webauthn_devices.iter().enumerate() {
            unknown.extend(
                d.other
                    .keys()
                    .filter(|k| !IGNORED_DEVICE_FIELDS.contains(&k.as_str()))
                    .map(|k| format!("webauthn_devices[{i}].{k}")),
            );
        }
        unknown
    }
}

/// One record of a file, or why it could not be read; `at` is its line (NDJSON, CSV) or
/// position (JSON array), from 1.
#[derive(Debug)]
pub struct Read {
    pub at: usize,
    pub record: Result<UserRecord, String>,
}

/// The records of `input`: a JSON array, one JSON object per line, or CSV (by its first
/// character: `[`, `{`, anything else).
pub fn read_all(input: &mut dyn BufRead) -> Result<Vec<Read>, String> {
    let mut text = String::new();
    input
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read the file: {e}"))?;
    let text = text.trim_start_matches('\u{feff}');
    match text.trim_start().chars().next() {
        None => Ok(Vec::new()),
        Some('[') => {
            let items: Vec<Value> =
                serde_json::from_str(text).map_err(|e| format!("not a JSON array: {e}"))?;
            Ok(items
                .into_iter()
                .enumerate()
                .map(|(i, v)| Read {
                    at: i + 1,
                    record: serde_json::from_value(v).map_err(|e| e.to_string()),
                })
                .collect())
        }
        Some('{') => Ok(text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, line)| Read {
                at: i + 1,
                record: serde_json::from_str(line).map_err(|e| e.to_string()),
            })
            .collect()),
        Some(_) => read_csv(text),
    }
}

/// The console's CSV template: a header row naming `email`, `phone` and, optionally, `id`,
/// `email_verified`, `phone_verified`, `status`, `created_at`, `external_id`; any other column
/// is a user metadata field of that name (typed by the app's schema at import).
fn read_csv(text: &str) -> Result<Vec<Read>, String> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(false)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| format!("not CSV: {e}"))?
        .clone();
    let mut reads = Vec::new();
    for (i, row) in reader.records().enumerate() {
        // Line 1 is the header.
        let at = i + 2;
        let record = row.map_err(|e| e.to_string()).map(|row| {
            let mut r = UserRecord::default();
            let mut metadata = Map::new();
            for (name, value) in headers.iter().zip(row.iter()) {
                let flag = || matches!(value.to_ascii_lowercase().as_str(), "true" | "1" | "yes");
                match name {
                    "id" => r.id = value.into(),
                    "email" => r.email = value.into(),
                    "phone" => r.phone = value.into(),
                    "email_verified" => r.email_verified = flag(),
                    "phone_verified" => r.phone_verified = flag(),
                    "status" => r.status = value.into(),
                    "created_at" => r.created_at = value.into(),
                    "external_id" => r.external_id = value.into(),
                    _ if value.is_empty() => {}
                    field => {
                        metadata.insert(field.to_string(), Value::String(value.into()));
                    }
                }
            }
            if !metadata.is_empty() {
                r.user_metadata = Some(metadata);
            }
            r
        });
        reads.push(Read { at, record });
    }
    Ok(reads)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn read(text: &str) -> Vec<Read> {
        read_all(&mut text.as_bytes()).unwrap()
    }

    #[test]
    fn the_three_forms_read_the_same_user() {
        let array = r#"[{"id": "u1", "email": "a@example.com", "webauthn_devices": []}]"#;
        let lines = "{\"id\": \"u1\", \"email\": \"a@example.com\"}\n\n";
        let csv = "id,email,phone\nu1,a@example.com,\n";
        for text in [array, lines, csv] {
            let reads = read(text);
            assert_eq!(reads.len(), 1, "{text}");
            let r = reads[0].record.as_ref().unwrap();
            assert_eq!((r.id.as_str(), r.email.as_str()), ("u1", "a@example.com"));
        }
    }

    #[test]
    fn unreadable_records_are_reported_where_they_are() {
        let reads = read("{\"id\": \"u1\"}\n{\"id\": 5}\nnot json\n");
        assert_eq!(reads.len(), 3);
        assert!(reads[0].record.is_ok());
        assert_eq!((reads[1].at, reads[1].record.is_err()), (2, true));
        assert_eq!((reads[2].at, reads[2].record.is_err()), (3, true));
    }

    #[test]
    fn csv_columns_beyond_the_template_are_metadata() {
        let reads = read("email,plan,email_verified\nb@example.com,pro,true\n");
        let r = reads[0].record.as_ref().unwrap();
        assert!(r.email_verified);
        assert_eq!(r.user_metadata.as_ref().unwrap()["plan"], "pro");
        assert_eq!(reads[0].at, 2);
    }

    #[test]
    fn unknown_fields_are_named_known_ones_are_not() {
        let text = r#"[{"id": "u", "recent_events": [], "favourite": 1,
                       "webauthn_devices": [{"cred_id": "AA", "type": "passkey", "colour": "red"}]}]"#;
        let r = read(text).remove(0).record.unwrap();
        assert_eq!(
            r.unknown_fields(),
            ["favourite", "webauthn_devices[0].colour"]
        );
    }
}
