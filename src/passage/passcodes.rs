//! One-time passcodes for Passage logins and registrations: delivered by email or SMS through
//! the outbox, activated once for a session.

use super::{
    sessions::{self, AuthResult},
    users::{self, Entry, Identifier},
    App, Passage,
};
use crate::{
    crypto,
    domain::{now_ms, UserStatus},
    error::Error,
    storage::{PasscodeRow, Store, Unit},
};

/// Wrong codes allowed per passcode.
const MAX_ATTEMPTS: i64 = 5;
const CODE_LEN: usize = 6;

/// `login/otp` and `register/otp`: sends a code to the identifier of an existing, active
/// user, or of a new one. Returns the passcode id.
pub async fn start(
    p: &Passage,
    app: &App,
    identifier: &str,
    entry: Entry,
) -> Result<String, Error> {
    let (user, to) = users::entrant(p, app, identifier, entry).await?;
    send(p, app, &user.id, &to).await
}

async fn send(p: &Passage, app: &App, user_id: &str, to: &Identifier) -> Result<String, Error> {
    to.may_receive(p, app).await?;
    let now = now_ms();
    let id = crypto::row_uuid();
    let code = crypto::random_code(CODE_LEN, false);
    let ttl = app.settings.otp_ttl;
    let passcode = PasscodeRow {
        id: id.clone(),
        app_id: app.id.clone(),
        user_id: user_id.to_string(),
        channel: to.channel(),
        code_hash: p.keys.code_hash(&id, &code),
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
    let message = to.message(subject, text, &app.settings.default_language);
    let unit = Unit::all(vec![Store::insert_passcode(&passcode)]);
    p.outbox.commit(unit, Some(message)).await?;
    Ok(id)
}

/// `otp/activate`: the right code, once, within its lifetime and attempts, starts a session.
pub async fn activate(
    p: &Passage,
    app: &App,
    otp_id: &str,
    code: &str,
) -> Result<AuthResult, Error> {
    // An unknown passcode is a wrong credential, not a missing resource.
    let window = p.limits.failure_window();
    let found = p
        .store
        .passcode_for_check(&app.id, otp_id, window.start)
        .await?;
    let found = found.ok_or(Error::Unauthenticated)?;
    if found.row.user_status == UserStatus::Inactive {
        return Err(Error::Inactive);
    }
    // Too many wrong codes for this user lately: not even a right one is taken now.
    p.limits.within_failure_budget(found.failures, window)?;
    let passcode = found.row.row;
    // The stored hash never changes: comparing before the conditional update is race-free.
    let correct =
        crypto::constant_time_eq(&p.keys.code_hash(otp_id, code.trim()), &passcode.code_hash);
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
        p.limits
            .count_failure(&app.id, &passcode.user_id, window)
            .await?;
        return match p.store.count_wrong_passcode(otp_id, now).await? {
            Some(attempts) if attempts >= passcode.max_attempts => Err(Error::TooManyAttempts),
            Some(_) => Err(Error::WrongCode),
            None => Err(unusable()),
        };
    }
    // The code reached the identifier it was sent to: that identifier is verified. Using the
    // code, counting the login and storing the session are one unit.
    let (result, session) = sessions::new_session(p, app, &passcode.user_id).await?;
    let login = Store::record_login(
        &app.id,
        &passcode.user_id,
        Some(passcode.channel),
        None,
        now,
    );
    let then = std::iter::once(login).chain(session).collect();
    if !p
        .store
        .commit(Unit::chain(Store::use_passcode(otp_id, now), then))
        .await?
    {
        return Err(unusable());
    }
    Ok(result)
}
