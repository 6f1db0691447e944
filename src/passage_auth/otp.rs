//! One-time passcodes for Passage logins and registrations: delivered by email or SMS through
//! the outbox, activated once for a session.

use super::{
    apps::App,
    session::{self, AuthResult},
    users::{self, Identifier},
};
use crate::{
    app::AppState,
    crypto,
    delivery::Channel,
    domain::now_ms,
    error::Error,
    storage::{PasscodeRow, Store},
};

/// Wrong codes allowed per passcode.
const MAX_ATTEMPTS: i64 = 5;
const CODE_LEN: usize = 6;

/// `login/otp`: a code for an existing, active user. Returns the passcode id.
pub async fn login(s: &AppState, app: &App, identifier: &str) -> Result<String, Error> {
    let id = Identifier::parse(app, identifier)?;
    let user = users::find(s, app, identifier)
        .await?
        .ok_or(Error::NotFound)?;
    if user.status == "inactive" {
        return Err(Error::Inactive);
    }
    send(s, app, &user.id, &id).await
}

/// `register/otp`: signs the user up (as the app allows), then sends a code.
pub async fn register(s: &AppState, app: &App, identifier: &str) -> Result<String, Error> {
    let id = Identifier::parse(app, identifier)?;
    let user = users::sign_up(s, app, identifier, None).await?;
    send(s, app, &user.id, &id).await
}

async fn send(s: &AppState, app: &App, user_id: &str, to: &Identifier) -> Result<String, Error> {
    s.throttle_recipient(to.as_str()).await?;
    let now = now_ms();
    let id = uuid::Uuid::new_v4().to_string();
    let code = crypto::random_code(CODE_LEN, false);
    let ttl = app.settings.otp_ttl;
    let passcode = PasscodeRow {
        id: id.clone(),
        app_id: app.id.clone(),
        user_id: user_id.to_string(),
        channel: to.channel().as_str().to_string(),
        code_hash: s.keys.code_hash(&id, &code),
        attempts: 0,
        max_attempts: MAX_ATTEMPTS,
        expires_at: now + ttl * 1000,
        used_at: None,
        created_at: now,
    };
    let minutes = (ttl + 59) / 60;
    let text = format!(
        "Your {} code is {code}. It expires in {minutes} minutes.",
        app.name
    );
    let subject = format!("Your {} code", app.name);
    let outbox = to.message(s, subject, text, &app.settings.default_language, now)?;
    s.store
        .write_all(vec![Store::insert_passcode(&passcode), outbox])
        .await?;
    s.outbox_wake.notify_one();
    Ok(id)
}

/// `otp/activate`: the right code, once, within its lifetime and attempts, starts a session.
pub async fn activate(
    s: &AppState,
    app: &App,
    otp_id: &str,
    code: &str,
) -> Result<AuthResult, Error> {
    let passcode = s
        .store
        .get_passcode(&app.id, otp_id)
        .await
        .map_err(|e| match e {
            Error::NotFound => Error::Unauthenticated,
            e => e,
        })?;
    // The stored hash never changes: comparing before the conditional update is race-free.
    let correct =
        crypto::constant_time_eq(&s.keys.code_hash(otp_id, code.trim()), &passcode.code_hash);
    let now = now_ms();
    match s.store.attempt_passcode(otp_id, correct, now).await? {
        Some(_) if correct => {}
        Some(attempts) if attempts >= passcode.max_attempts => return Err(Error::TooManyAttempts),
        Some(_) => return Err(Error::WrongCode),
        // Used, expired, or out of attempts already.
        None if passcode.attempts >= passcode.max_attempts => return Err(Error::TooManyAttempts),
        None => return Err(Error::Expired),
    }
    let user = s.store.get_user(&app.id, &passcode.user_id).await?;
    if user.status == "inactive" {
        return Err(Error::Inactive);
    }
    // The code reached the identifier it was sent to: that identifier is verified.
    let by_email = passcode.channel == Channel::Email.as_str();
    s.store
        .record_login(&app.id, &user.id, by_email, !by_email, now)
        .await?;
    session::start(s, app, &user).await
}
