//! 2FA applications: defaults, validation, and the rules around the default application.

use std::collections::BTreeMap;

use super::wire::ApplicationRequest;
use crate::{
    domain::{now_ms, MAX_CODE_LEN, MIN_CODE_LEN},
    error::{Error, Resource},
    state::AppState,
    storage::{ApplicationRow, ApplicationSettings, Statement, Store, Unit},
};

pub const DEFAULT_NAME: &str = "default";
pub const DEFAULT_TEMPLATE: &str = "OTP code: {{OTP}}. Valid for {{SEC}} seconds.";
pub const DEFAULT_VOICE_TEMPLATE: &str = "Your code is {{OTP}}. Again: {{OTP}}.";

/// A new application's settings: tyntec's defaults.
pub fn default_settings(name: &str) -> ApplicationSettings {
    ApplicationSettings {
        name: name.to_string(),
        pin_length: 4,
        alphanumeric: false,
        attempts: 3,
        expire_seconds: 300,
        sender: "VERIFY".into(),
        caller: None,
        templates: BTreeMap::from([("en".to_string(), DEFAULT_TEMPLATE.to_string())]),
    }
}

/// The insert of an account's default application, for the account's unit.
pub fn insert_default(account_id: &str, now: i64) -> Result<Statement, Error> {
    let app = ApplicationRow {
        id: uuid::Uuid::new_v4().to_string(),
        account_id: account_id.to_string(),
        is_default: true,
        settings: default_settings(DEFAULT_NAME),
        created_at: now,
        updated_at: now,
    };
    Store::insert_application(&app)
}

pub async fn create(
    s: &AppState,
    account_id: &str,
    req: ApplicationRequest,
) -> Result<ApplicationRow, Error> {
    let name = req
        .name
        .clone()
        .ok_or_else(|| Error::invalid("name", "is required"))?;
    let mut settings = default_settings(&name);
    apply(&mut settings, req, false)?;
    let now = now_ms();
    let app = ApplicationRow {
        id: uuid::Uuid::new_v4().to_string(),
        account_id: account_id.to_string(),
        is_default: false,
        settings,
        created_at: now,
        updated_at: now,
    };
    s.store
        .commit(Unit::all(vec![Store::insert_application(&app)?]))
        .await?;
    Ok(app)
}

pub async fn edit(
    s: &AppState,
    account_id: &str,
    id: &str,
    req: ApplicationRequest,
) -> Result<ApplicationRow, Error> {
    s.store
        .modify_application(account_id, id, now_ms(), |app| {
            apply(&mut app.settings, req.clone(), app.is_default)
        })
        .await
}

/// The account's applications, the default one first.
pub async fn list(s: &AppState, account_id: &str) -> Result<Vec<ApplicationRow>, Error> {
    s.store.list_applications(account_id).await
}

/// One application of the account; `id` may be `default`.
pub async fn get(s: &AppState, account_id: &str, id: &str) -> Result<ApplicationRow, Error> {
    s.store.get_application(account_id, id).await
}

pub async fn delete(s: &AppState, account_id: &str, id: &str) -> Result<ApplicationRow, Error> {
    let app = s.store.get_application(account_id, id).await?;
    if app.is_default {
        return Err(Error::invalid(
            "applicationId",
            "the default application cannot be deleted",
        ));
    }
    s.store.delete_application(account_id, &app.id).await?;
    Ok(app)
}

/// Adds or replaces the template of one language (`de`, or `de-voice` for calls).
pub async fn set_template(
    s: &AppState,
    account_id: &str,
    id: &str,
    language: &str,
    text: &str,
) -> Result<ApplicationRow, Error> {
    let key = template_key(language)?;
    let text = template_text("template", text)?;
    s.store
        .modify_application(account_id, id, now_ms(), |app| {
            app.settings.templates.insert(key.clone(), text.clone());
            Ok(())
        })
        .await
}

pub async fn delete_template(
    s: &AppState,
    account_id: &str,
    id: &str,
    language: &str,
) -> Result<ApplicationRow, Error> {
    let key = template_key(language)?;
    s.store
        .modify_application(account_id, id, now_ms(), |app| {
            app.settings
                .templates
                .remove(&key)
                .map(|_| ())
                .ok_or(Error::NotFound(Resource::Template))
        })
        .await
}

/// Applies the given fields over `settings`, validating each.
fn apply(
    settings: &mut ApplicationSettings,
    req: ApplicationRequest,
    is_default: bool,
) -> Result<(), Error> {
    if let Some(name) = req.name {
        let name = name.trim().to_string();
        if name.is_empty() || name.len() > 100 {
            return Err(Error::invalid("name", "must be 1 to 100 characters"));
        }
        let reserved = name.eq_ignore_ascii_case(DEFAULT_NAME);
        if reserved != is_default {
            return Err(if is_default {
                Error::invalid("name", "the default application keeps its name")
            } else {
                Error::Conflict(format!(
                    "the name `{name}` is reserved for the default application"
                ))
            });
        }
        settings.name = name;
    }
    if let Some(n) = req.pin_length {
        if !(MIN_CODE_LEN as i64..=MAX_CODE_LEN as i64).contains(&n) {
            return Err(Error::invalid("pinLength", "must be between 4 and 10"));
        }
        settings.pin_length = n;
    }
    if let Some(a) = req.alphanumeric {
        settings.alphanumeric = a;
    }
    if let Some(n) = req.attempts {
        if !(1..=100).contains(&n) {
            return Err(Error::invalid("attempts", "must be between 1 and 100"));
        }
        settings.attempts = n;
    }
    if let Some(n) = req.expire {
        if !(1..=86_400).contains(&n) {
            return Err(Error::invalid(
                "expire",
                "must be between 1 and 86400 seconds",
            ));
        }
        settings.expire_seconds = n;
    }
    if let Some(sender) = req.sender {
        settings.sender = sender_id("sender", &sender)?;
    }
    if let Some(caller) = req.caller {
        settings.caller = Some(sender_id("caller", &caller)?);
    }
    if let Some(templates) = req.template {
        let mut checked = BTreeMap::new();
        for (language, text) in templates {
            checked.insert(template_key(&language)?, template_text("template", &text)?);
        }
        settings.templates = checked;
    }
    Ok(())
}

/// An SMS sender id or voice caller id: 1 to 15 printable characters.
pub fn sender_id(field: &'static str, s: &str) -> Result<String, Error> {
    let s = s.trim();
    if s.is_empty() || s.chars().count() > 15 || s.chars().any(char::is_control) {
        return Err(Error::invalid(
            field,
            "must be 1 to 15 printable characters",
        ));
    }
    Ok(s.to_string())
}

/// `en` or `en-voice`.
fn template_key(language: &str) -> Result<String, Error> {
    let lower = language.trim().to_ascii_lowercase();
    let (lang, suffix) = match lower.strip_suffix("-voice") {
        Some(l) => (l, "-voice"),
        None => (lower.as_str(), ""),
    };
    if lang.len() != 2 || !lang.chars().all(|c| c.is_ascii_lowercase()) {
        return Err(Error::invalid(
            "language",
            "expected an ISO 639-1 code, optionally with -voice (`de`, `de-voice`)",
        ));
    }
    Ok(format!("{lang}{suffix}"))
}

/// A template must carry the code.
pub fn template_text(field: &'static str, text: &str) -> Result<String, Error> {
    if !text.contains("{{OTP}}") {
        return Err(Error::invalid(
            field,
            "must contain the {{OTP}} placeholder",
        ));
    }
    if text.chars().count() > 1000 {
        return Err(Error::invalid(field, "must be at most 1000 characters"));
    }
    Ok(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_name_is_reserved() {
        let mut s = default_settings("x");
        let req = ApplicationRequest {
            name: Some("Default".into()),
            ..Default::default()
        };
        assert!(matches!(apply(&mut s, req, false), Err(Error::Conflict(_))));
    }

    #[test]
    fn template_keys() {
        assert_eq!(template_key("DE").unwrap(), "de");
        assert_eq!(template_key("de-voice").unwrap(), "de-voice");
        assert!(template_key("deu").is_err());
        assert!(template_text("t", "no code").is_err());
    }
}
