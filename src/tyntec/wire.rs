//! JSON shapes of the tyntec 2FA v1 API, field for field as its examples show.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{
    domain::{iso_ms, OtpStatus},
    storage::{ApplicationRow, OtpEventRow, OtpRow},
};

/// The OTP resource.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OtpResponse {
    pub account_id: String,
    pub application_id: String,
    pub otp_id: String,
    pub number: String,
    pub attempt_count: i64,
    pub otp_status: &'static str,
    pub expire: i64,
    pub created: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference_id: Option<String>,
    pub timestamp_created: String,
    pub timestamp_expire: String,
}

impl OtpResponse {
    /// An ACTIVE OTP past its expiry reads as EXPIRED even before a check marks it so.
    pub fn from_row(row: &OtpRow, now: i64) -> Self {
        let stored = row.status;
        let status = if stored == OtpStatus::Active && row.expires_at <= now {
            OtpStatus::Expired
        } else {
            stored
        };
        OtpResponse {
            account_id: row.account_id.clone(),
            application_id: row.application_id.clone(),
            otp_id: row.id.clone(),
            number: row.number.clone(),
            attempt_count: row.attempt_count,
            otp_status: status.as_str(),
            expire: row.expires_at,
            created: row.created_at,
            reference_id: row.reference_id.clone(),
            timestamp_created: iso_ms(row.created_at),
            timestamp_expire: iso_ms(row.expires_at),
        }
    }
}

/// One entry of `GET /otp/{otpId}/events`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventResponse {
    pub event_id: i64,
    pub otp_id: String,
    /// CREATED, SENT, FALLBACK, DELIVERY_FAILED, UNDELIVERABLE, RESEND, CHECK_VERIFIED,
    /// CHECK_FAILED, EXPIRED, DELETED.
    pub event: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    pub created: i64,
    pub timestamp: String,
}

impl From<OtpEventRow> for EventResponse {
    fn from(e: OtpEventRow) -> Self {
        EventResponse {
            event_id: e.id,
            otp_id: e.otp_id,
            event: e.kind,
            channel: e.channel.map(|c| c.to_ascii_uppercase()),
            provider: e.provider,
            detail: e.detail,
            created: e.at,
            timestamp: iso_ms(e.at),
        }
    }
}

/// The 2FA application resource.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationResponse {
    pub application_id: String,
    pub account_id: String,
    pub name: String,
    pub default: bool,
    pub pin_length: i64,
    pub alphanumeric: bool,
    pub attempts: i64,
    pub expire: i64,
    pub sender: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caller: Option<String>,
    pub template: BTreeMap<String, String>,
    pub created: i64,
    pub updated: i64,
}

impl From<ApplicationRow> for ApplicationResponse {
    fn from(a: ApplicationRow) -> Self {
        let s = a.settings;
        ApplicationResponse {
            application_id: a.id,
            account_id: a.account_id,
            name: s.name,
            default: a.is_default,
            pin_length: s.pin_length,
            alphanumeric: s.alphanumeric,
            attempts: s.attempts,
            expire: s.expire_seconds,
            sender: s.sender,
            caller: s.caller,
            template: s.templates,
            created: a.created_at,
            updated: a.updated_at,
        }
    }
}

/// Create or edit an application: every field optional on edit.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationRequest {
    pub name: Option<String>,
    pub pin_length: Option<i64>,
    pub alphanumeric: Option<bool>,
    pub attempts: Option<i64>,
    pub expire: Option<i64>,
    pub sender: Option<String>,
    pub caller: Option<String>,
    /// Language → template; also accepted as `templates`.
    #[serde(alias = "templates")]
    pub template: Option<BTreeMap<String, String>>,
}
