//! The OTP lifecycle: send (with its delivery enqueued in the same transaction), resend,
//! check, delete, and the choice of channel and template.

use std::collections::BTreeMap;

use super::applications::{self, DEFAULT_TEMPLATE, DEFAULT_VOICE_TEMPLATE};
use crate::{
    crypto,
    delivery::{Channel, Envelope, Outgoing},
    domain::{now_ms, OtpCode, OtpStatus, PhoneNumber, PinLength, Via},
    error::{Error, Resource},
    state::AppState,
    storage::{ApplicationSettings, OtpEventRow, OtpFilter, OtpRow, Store, Unit},
};

/// A parsed send request.
#[derive(Debug)]
pub struct SendRequest {
    pub number: PhoneNumber,
    pub application_id: Option<String>,
    pub text: Option<String>,
    pub pin_length: Option<PinLength>,
    pub otp_code: Option<OtpCode>,
    pub via: Via,
    pub language: Option<String>,
    pub sender: Option<String>,
    pub caller: Option<String>,
    pub reference_id: Option<String>,
}

/// Overrides for a resend.
#[derive(Debug)]
pub struct ResendRequest {
    pub via: Via,
    pub sender: Option<String>,
    pub caller: Option<String>,
}

pub async fn send(s: &AppState, account_id: &str, req: SendRequest) -> Result<OtpRow, Error> {
    let app = s
        .store
        .get_application(
            account_id,
            req.application_id.as_deref().unwrap_or("default"),
        )
        .await
        .map_err(|e| match e {
            Error::NotFound(_) => Error::invalid("applicationId", "no such application"),
            e => e,
        })?;
    let settings = &app.settings;
    let code = match req.otp_code {
        Some(code) => code,
        None => {
            let len = req
                .pin_length
                .map(PinLength::get)
                .unwrap_or(settings.pin_length as usize);
            OtpCode::parse("otpCode", &crypto::random_code(len, settings.alphanumeric))?
        }
    };
    s.limits.country(req.number.region())?;
    s.limits
        .sending(account_id, req.number.as_str(), true)
        .await?;

    let now = now_ms();
    let id = crypto::row_uuid();
    let language = req
        .language
        .clone()
        .or_else(|| req.number.country_language().map(str::to_string));
    let otp = OtpRow {
        id: id.clone(),
        account_id: account_id.to_string(),
        application_id: app.id.clone(),
        number: req.number.as_str().to_string(),
        code_hash: s.keys.code_hash(&id, code.expose()),
        code_sealed: s.keys.seal(&id, code.expose())?,
        code_length: code.len() as i64,
        custom_text: req.text,
        language,
        sender: req.sender,
        caller: req.caller,
        reference_id: req.reference_id,
        via: req.via,
        status: OtpStatus::Active,
        attempt_count: 0,
        max_attempts: settings.attempts,
        resend_count: 0,
        created_at: now,
        expires_at: now + settings.expire_seconds * 1000,
        updated_at: now,
        deleted_at: None,
    };
    let (channel, fallback) = channels(req.via, &req.number);
    let message = Outgoing {
        otp_id: Some(&id),
        channel,
        fallback,
        recipient: &otp.number,
        envelope: envelope(&app.settings, &otp, code.expose(), channel, fallback),
    };
    let unit = Unit::all(vec![Store::insert_otp(&otp)]);
    s.outbox.commit(unit, Some(message)).await?;
    s.metrics.otp("created");
    Ok(otp)
}

pub async fn resend(
    s: &AppState,
    account_id: &str,
    id: &str,
    req: ResendRequest,
) -> Result<OtpRow, Error> {
    let current = live(s, account_id, id).await?;
    let number = PhoneNumber::parse(&current.number, None)?;
    s.limits.sending(account_id, &current.number, true).await?;
    // The application may have been deleted since: its OTPs still resend with defaults.
    let settings = match s
        .store
        .get_application(account_id, &current.application_id)
        .await
    {
        Ok(app) => app.settings,
        Err(Error::NotFound(_)) => applications::default_settings(""),
        Err(e) => return Err(e),
    };
    let code = s.keys.open(id, &current.code_sealed)?;
    let now = now_ms();
    let limit = i64::from(s.config.otp_resend_limit);
    let mut otp = current;
    otp.sender = req.sender.or(otp.sender);
    otp.caller = req.caller.or(otp.caller);
    let (channel, fallback) = channels(req.via, &number);
    let message = Outgoing {
        otp_id: Some(id),
        channel,
        fallback,
        recipient: &otp.number,
        envelope: envelope(&settings, &otp, &code, channel, fallback),
    };
    // Counting the resend (which records its event) and the message are one unit.
    let count = Store::count_resend(account_id, id, req.via, limit, now);
    let unit = Unit::chain(count, Vec::new());
    if !s.outbox.commit(unit, Some(message)).await? {
        return Err(if otp.resend_count >= limit {
            Error::RateLimited {
                retry_after: std::time::Duration::from_millis(
                    (otp.expires_at - now).max(1000) as u64
                ),
            }
        } else {
            Error::Gone
        });
    }
    otp.resend_count += 1;
    otp.updated_at = now;
    s.metrics.otp("resent");
    Ok(otp)
}

/// Checks a code. Ok → VERIFIED. The attempt count and the final state are settled by one
/// conditional update, so of many concurrent correct checks exactly one succeeds.
pub async fn check(s: &AppState, account_id: &str, id: &str, input: &str) -> Result<OtpRow, Error> {
    let window = s.limits.failure_window();
    let found = s.store.otp_for_check(account_id, id, window.start).await?;
    let otp = found.row;
    if otp.deleted_at.is_some() || otp.status != OtpStatus::Active {
        return Err(Error::Gone);
    }
    let now = now_ms();
    if otp.expires_at <= now {
        return Err(expire(s, id, now).await?);
    }
    // Too many wrong codes for this recipient lately: not even a right one is taken now.
    s.limits.within_failure_budget(found.failures, window)?;
    // The stored hash never changes, so comparing before the update is race-free.
    let verified = OtpCode::for_check(input, otp.code_length as usize)
        .map(|code| s.keys.code_hash(id, code.expose()))
        .is_some_and(|hash| crypto::constant_time_eq(&hash, &otp.code_hash));
    let Some(updated) = s.store.record_check(id, verified, now).await? else {
        // Someone else settled it first, or it lapsed in between.
        return Err(if otp.expires_at <= now_ms() {
            expire(s, id, now_ms()).await?
        } else {
            Error::Gone
        });
    };
    if updated.status != OtpStatus::Verified {
        s.limits
            .count_failure(account_id, &otp.number, window)
            .await?;
    }
    match updated.status {
        OtpStatus::Verified => {
            s.metrics.otp("verified");
            Ok(updated)
        }
        OtpStatus::TooManyAttempts => {
            s.metrics.otp("locked");
            Err(Error::TooManyAttempts)
        }
        _ => {
            s.metrics.otp("failed");
            Err(Error::WrongCode)
        }
    }
}

/// The first check after expiry answers 403 and marks the OTP; later ones answer 410.
async fn expire(s: &AppState, id: &str, now: i64) -> Result<Error, Error> {
    if s.store.mark_expired(id, now).await? {
        s.metrics.otp("expired");
        Ok(Error::Expired)
    } else {
        Ok(Error::Gone)
    }
}

pub async fn status(s: &AppState, account_id: &str, id: &str) -> Result<OtpRow, Error> {
    live(s, account_id, id).await
}

pub async fn delete(s: &AppState, account_id: &str, id: &str) -> Result<OtpRow, Error> {
    let otp = s.store.delete_otp(account_id, id, now_ms()).await?;
    s.metrics.otp("deleted");
    Ok(otp)
}

pub async fn list(s: &AppState, account_id: &str, filter: OtpFilter) -> Result<Vec<OtpRow>, Error> {
    s.store.list_otps(account_id, &filter, now_ms()).await
}

/// The OTP's history, oldest first. Creation is read from the OTP itself rather than
/// stored twice.
pub async fn events(s: &AppState, account_id: &str, id: &str) -> Result<Vec<OtpEventRow>, Error> {
    let otp = s.store.get_otp(account_id, id).await?;
    let created = OtpEventRow {
        id: 0,
        otp_id: otp.id.clone(),
        at: otp.created_at,
        kind: "CREATED".into(),
        channel: None,
        provider: None,
        detail: Some(format!("via {}", otp.via.as_str())),
    };
    let mut events = vec![created];
    events.extend(s.store.list_otp_events(id).await?);
    Ok(events)
}

/// An OTP that was not deleted.
async fn live(s: &AppState, account_id: &str, id: &str) -> Result<OtpRow, Error> {
    let otp = s.store.get_otp(account_id, id).await?;
    if otp.deleted_at.is_some() {
        return Err(Error::NotFound(Resource::Otp));
    }
    Ok(otp)
}

/// First channel and fallback. AUTO calls numbers that cannot take an SMS and otherwise
/// sends an SMS with a call as backup.
fn channels(via: Via, number: &PhoneNumber) -> (Channel, Option<Channel>) {
    match via {
        Via::Sms => (Channel::Sms, None),
        Via::Voice => (Channel::Voice, None),
        Via::Auto if number.is_voice_only() => (Channel::Voice, None),
        Via::Auto => (Channel::Sms, Some(Channel::Voice)),
    }
}

fn envelope(
    settings: &ApplicationSettings,
    otp: &OtpRow,
    code: &str,
    channel: Channel,
    fallback: Option<Channel>,
) -> Envelope {
    let secs = (otp.expires_at - otp.created_at) / 1000;
    let language = otp.language.as_deref();
    let render = |ch: Channel| {
        let template = match &otp.custom_text {
            Some(text) => text.as_str(),
            None => pick_template(&settings.templates, language, ch == Channel::Voice),
        };
        render(template, code, secs, ch == Channel::Voice)
    };
    Envelope {
        text: render(channel),
        fallback_text: fallback.map(render),
        sender: otp.sender.clone().or_else(|| Some(settings.sender.clone())),
        caller: otp.caller.clone().or_else(|| settings.caller.clone()),
        language: language.map(str::to_string),
        subject: None,
    }
}

/// Template choice: the language asked for (or the number's country's), then English, then
/// any template the application has, then the built-in wording. Calls prefer `xx-voice`.
fn pick_template<'a>(
    templates: &'a BTreeMap<String, String>,
    language: Option<&str>,
    voice: bool,
) -> &'a str {
    let mut keys = Vec::new();
    for lang in language.into_iter().chain(["en"]) {
        if voice {
            keys.push(format!("{lang}-voice"));
        }
        keys.push(lang.to_string());
    }
    keys.iter()
        .find_map(|k| templates.get(k))
        .or_else(|| {
            templates
                .iter()
                .find(|(k, _)| !k.ends_with("-voice"))
                .map(|(_, v)| v)
        })
        .map(String::as_str)
        .unwrap_or(if voice {
            DEFAULT_VOICE_TEMPLATE
        } else {
            DEFAULT_TEMPLATE
        })
}

/// Fills `{{OTP}}` and `{{SEC}}`. A call reads the code character by character.
fn render(template: &str, code: &str, secs: i64, voice: bool) -> String {
    let spoken;
    let code = if voice {
        spoken = code
            .chars()
            .map(String::from)
            .collect::<Vec<_>>()
            .join(", ");
        spoken.as_str()
    } else {
        code
    };
    template
        .replace("{{OTP}}", code)
        .replace("{{SEC}}", &secs.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn templates(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn template_choice() {
        let t = templates(&[
            ("en", "E {{OTP}}"),
            ("de", "D {{OTP}}"),
            ("de-voice", "DV {{OTP}}"),
        ]);
        assert_eq!(pick_template(&t, Some("de"), false), "D {{OTP}}");
        assert_eq!(pick_template(&t, Some("de"), true), "DV {{OTP}}");
        assert_eq!(pick_template(&t, Some("fr"), false), "E {{OTP}}");
        assert_eq!(pick_template(&t, Some("fr"), true), "E {{OTP}}");
        assert_eq!(
            pick_template(&BTreeMap::new(), None, false),
            DEFAULT_TEMPLATE
        );
    }

    #[test]
    fn rendering() {
        assert_eq!(
            render("{{OTP}} for {{SEC}}s", "0427", 300, false),
            "0427 for 300s"
        );
        assert_eq!(render("code {{OTP}}", "12", 60, true), "code 1, 2");
    }

    #[test]
    fn auto_calls_landlines() {
        let landline = PhoneNumber::parse("+4989202451100", None).unwrap();
        let mobile = PhoneNumber::parse("+4915123456789", None).unwrap();
        assert_eq!(channels(Via::Auto, &landline), (Channel::Voice, None));
        assert_eq!(
            channels(Via::Auto, &mobile),
            (Channel::Sms, Some(Channel::Voice))
        );
        assert_eq!(channels(Via::Sms, &landline), (Channel::Sms, None));
    }
}
