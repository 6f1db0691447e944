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
    domain::now_ms,
    error::Error,
    storage::{PasscodeRow, Store, WithUserStatus},
};

/// Wrong codes allowed per passcode.
const MAX_ATTEMPTS: i64 = 5;
const CODE_LEN: usize = 6;

/// `login/otp`: a code for an existing, active user. Returns the passcode id.
pub async fn login(s: &AppState, app: &App, identifier: &str) -> Result<String, Error> {
    let id = Identifier::parse(app, identifier)?;
    let user = s
        .store
        .find_user(&app.id, id.as_str())
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
    let user = users::sign_up(s, app, &id, None).await?;
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
    let (outbox, delivery) = to.message(s, subject, text, &app.settings.default_language, now)?;
    s.store
        .write_all(vec![Store::insert_passcode(&passcode), outbox])
        .await?;
    s.handoff.push(delivery);
    Ok(id)
}

/// `otp/activate`: the right code, once, within its lifetime and attempts, starts a session.
pub async fn activate(
    s: &AppState,
    app: &App,
    otp_id: &str,
    code: &str,
) -> Result<AuthResult, Error> {
    let WithUserStatus {
        row: passcode,
        user_status,
    } = s
        .store
        .get_passcode(&app.id, otp_id)
        .await
        .map_err(|e| match e {
            Error::NotFound => Error::Unauthenticated,
            e => e,
        })?;
    if user_status == "inactive" {
        return Err(Error::Inactive);
    }
    // The stored hash never changes: comparing before the conditional update is race-free.
    let correct =
        crypto::constant_time_eq(&s.keys.code_hash(otp_id, code.trim()), &passcode.code_hash);
    let now = now_ms();
    // Used, expired, or out of attempts already (or used by a racing activation).
    let unusable = || {
        if passcode.attempts >= passcode.max_attempts {
            Error::TooManyAttempts
        } else {
            Error::Expired
        }
    };
    if !correct {
        return match s.store.count_wrong_passcode(otp_id, now).await? {
            Some(attempts) if attempts >= passcode.max_attempts => Err(Error::TooManyAttempts),
            Some(_) => Err(Error::WrongCode),
            None => Err(unusable()),
        };
    }
    // The code reached the identifier it was sent to: that identifier is verified. Using the
    // code, counting the login and storing the session are one unit.
    let (result, session) = session::new_session(s, app, &passcode.user_id).await?;
    let mut steps = vec![
        Store::use_passcode(otp_id, now),
        Store::record_login(&app.id, &passcode.user_id, &passcode.channel, None, now),
    ];
    steps.extend(session);
    if !s.store.write_chain(steps).await? {
        return Err(unusable());
    }
    Ok(result)
}
