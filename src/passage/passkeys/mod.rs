//! Passkeys: the WebAuthn ceremonies that register one (at sign-up, or as another device of
//! a signed-in user) and log in with one, with or without an identifier. webauthn-rs makes
//! the relying-party checks; the ceremony state waits in the database between start and
//! finish, so any node finishes what another started, and only once.
//!
//! Synced passkeys keep no sign counter and may change their backup flags: a counter that
//! goes backwards or a change of backup eligibility is recorded on the device and logged,
//! and refused only when the app asks for `passkey_strict_mode`.

mod relying_party;

use webauthn_rs::prelude::{
    Credential, DiscoverableAuthentication, DiscoverableKey, Passkey, PasskeyRegistration,
    PublicKeyCredential,
};

use super::{
    sessions::{self, AuthResult},
    users::{self, Entry},
    wire::{Device, Handshake},
    App, Passage,
};
use crate::{
    crypto,
    domain::{now_ms, UserStatus},
    error::Error,
    storage::{CeremonyRow, Filtered, PasskeyRow, PasskeyUse, Store, Unit, User},
};

/// How long a started ceremony may be finished.
const CEREMONY_TTL_MS: i64 = 5 * 60 * 1000;

const REGISTER: &str = "register";
const LOGIN: &str = "login";
const ADD_DEVICE: &str = "add_device";

const COUNTER_REGRESSED: &str = "counter_regressed";
const BACKUP_ELIGIBILITY_CHANGED: &str = "backup_eligibility_changed";

/// `register/webauthn/start`: signs up the identifier (as the app allows) and asks the
/// browser for a new passkey.
pub async fn start_registration(
    p: &Passage,
    app: &App,
    identifier: &str,
    attachment: Option<&str>,
) -> Result<(Handshake, User), Error> {
    let (user, to) = match users::entrant(p, app, identifier, Entry::Register).await {
        Ok(entrant) => entrant,
        // A sign-up whose ceremony never finished may start again: nobody has used it.
        Err(Error::Conflict(m)) => {
            let to = users::Identifier::parse(app, identifier)?;
            match users::find(p, app, &to).await? {
                Some(user) if user.login_count == 0 && user.passkeys == 0 => (user, to),
                _ => return Err(Error::Conflict(m)),
            }
        }
        Err(e) => return Err(e),
    };
    let handshake = start_creation(p, app, &user, to.as_str(), attachment, REGISTER).await?;
    Ok((handshake, user))
}

/// `register/webauthn/finish`: stores the passkey and starts the first session; a pending
/// user becomes active.
pub async fn finish_registration(
    p: &Passage,
    app: &App,
    handshake_id: &str,
    response: serde_json::Value,
    user_id: &str,
) -> Result<AuthResult, Error> {
    let passkey = finish_creation(p, app, handshake_id, response, user_id, REGISTER).await?;
    let (result, session) = sessions::with_login(p, app, user_id, now_ms()).await?;
    store_passkey(p, app, handshake_id, REGISTER, &passkey, session).await?;
    Ok(result)
}

/// `currentuser/devices/start`: asks the browser for another passkey of the signed-in user.
pub async fn start_adding(
    p: &Passage,
    app: &App,
    user: &User,
    attachment: Option<&str>,
) -> Result<Handshake, Error> {
    let name = user
        .email
        .as_deref()
        .or(user.phone.as_deref())
        .unwrap_or(&user.id);
    start_creation(p, app, user, name, attachment, ADD_DEVICE).await
}

/// `currentuser/devices/finish`: stores the signed-in user's new passkey.
pub async fn finish_adding(
    p: &Passage,
    app: &App,
    user: &User,
    handshake_id: &str,
    response: serde_json::Value,
    user_id: &str,
) -> Result<Device, Error> {
    if !user_id.is_empty() && user_id != user.id {
        return Err(Error::invalid("user_id", "is not the signed-in user"));
    }
    let passkey = finish_creation(p, app, handshake_id, response, &user.id, ADD_DEVICE).await?;
    store_passkey(p, app, handshake_id, ADD_DEVICE, &passkey, Vec::new()).await?;
    Ok(passkey.into())
}

async fn start_creation(
    p: &Passage,
    app: &App,
    user: &User,
    name: &str,
    attachment: Option<&str>,
    kind: &'static str,
) -> Result<Handshake, Error> {
    let webauthn = relying_party::of(app)?;
    let existing = p.store.passkeys_of(&app.id, &user.id).await?;
    let exclude = existing
        .iter()
        .filter_map(|k| serde_json::from_str::<Passkey>(&k.credential).ok())
        .map(|k| k.cred_id().clone())
        .collect();
    // webauthn-rs takes a UUID as user handle; the options carry the user id's bytes instead.
    let (ccr, state) = webauthn
        .start_passkey_registration(uuid::Uuid::new_v4(), name, name, Some(exclude))
        .map_err(|e| Error::Internal(anyhow::anyhow!("passkey registration options: {e}")))?;
    let challenge = relying_party::creation_options(ccr, &user.id, attachment)?;
    let id = store_ceremony(p, app, kind, &user.id, &state).await?;
    Ok(Handshake { id, challenge })
}

/// Checks the browser's new credential against the ceremony `kind` started for `user_id`.
async fn finish_creation(
    p: &Passage,
    app: &App,
    handshake_id: &str,
    response: serde_json::Value,
    user_id: &str,
    kind: &str,
) -> Result<PasskeyRow, Error> {
    let refused = |reason: String| Error::invalid("handshake_response", reason);
    let reg = relying_party::registration_response(response)?;
    let (owner, state) = p
        .store
        .ceremony(&app.id, handshake_id, kind, now_ms())
        .await?
        .ok_or_else(|| refused("the handshake is unknown, finished or expired".into()))?;
    let passkey = finishing(p, app, handshake_id, kind, async {
        if owner != user_id {
            return Err(Error::invalid(
                "user_id",
                "is not the user of this handshake",
            ));
        }
        let state: PasskeyRegistration = serde_json::from_str(&state)
            .map_err(|e| Error::Internal(anyhow::anyhow!("stored registration state: {e}")))?;
        relying_party::of(app)?
            .finish_passkey_registration(&reg, &state)
            .map_err(|e| refused(format!("the passkey could not be verified: {e}")))
    })
    .await?;
    let credential = Credential::from(passkey.clone());
    let now = now_ms();
    Ok(PasskeyRow {
        id: crypto::random_id(),
        app_id: app.id.clone(),
        user_id: user_id.to_string(),
        cred_id: crypto::base64url(passkey.cred_id().as_slice()),
        user_handle: crypto::base64url(user_id.as_bytes()),
        credential: to_json(&passkey)?,
        friendly_name: "Passkey".into(),
        transports: relying_party::transports(&reg),
        aaguid: relying_party::aaguid(&reg),
        backup_eligible: credential.backup_eligible,
        backup_state: credential.backup_state,
        sign_count: i64::from(credential.counter),
        risk_signals: Vec::new(),
        usage_count: 0,
        last_login_at: None,
        created_at: now,
        updated_at: now,
    })
}

/// Ends the ceremony and stores the passkey it made, with the writes `then`; a credential the
/// app has already is refused, and so is a second finish of one ceremony.
async fn store_passkey(
    p: &Passage,
    app: &App,
    handshake_id: &str,
    kind: &str,
    passkey: &PasskeyRow,
    then: Vec<Filtered>,
) -> Result<(), Error> {
    let end = Store::end_ceremony(&app.id, handshake_id, kind, now_ms());
    let steps = std::iter::once(Store::insert_passkey(passkey))
        .chain(then)
        .collect();
    match p.store.commit(Unit::chain(end.into(), steps)).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(Error::invalid(
            "handshake_id",
            "the handshake is unknown, finished or expired",
        )),
        Err(Error::Conflict(_)) => Err(Error::invalid(
            "handshake_response",
            "this passkey is registered already",
        )),
        Err(e) => Err(e),
    }
}

/// `login/webauthn/start`: with an identifier, that user's passkeys; without one, any
/// discoverable passkey of the app (the browser's account picker or autofill).
pub async fn start_login(
    p: &Passage,
    app: &App,
    identifier: &str,
) -> Result<(Handshake, Option<User>), Error> {
    let webauthn = relying_party::of(app)?;
    let internal = |e| Error::Internal(anyhow::anyhow!("passkey login options: {e}"));
    if identifier.trim().is_empty() {
        let (rcr, state) = webauthn
            .start_discoverable_authentication()
            .map_err(internal)?;
        let id = store_ceremony(p, app, LOGIN, "", &state).await?;
        let challenge = relying_party::request_options(rcr)?;
        return Ok((Handshake { id, challenge }, None));
    }
    let user = users::find_active(p, app, &users::Identifier::parse(app, identifier)?).await?;
    let passkeys: Vec<Passkey> = p
        .store
        .passkeys_of(&app.id, &user.id)
        .await?
        .iter()
        .map(|k| serde_json::from_str(&k.credential))
        .collect::<Result<_, _>>()
        .map_err(|e| Error::Internal(anyhow::anyhow!("stored passkey: {e}")))?;
    if passkeys.is_empty() {
        return Err(Error::PasskeyRefused {
            discoverable: false,
            reason: "this user has no passkey",
        });
    }
    let (rcr, state) = webauthn
        .start_passkey_authentication(&passkeys)
        .map_err(internal)?;
    let id = store_ceremony(p, app, LOGIN, &user.id, &state).await?;
    let challenge = relying_party::request_options(rcr)?;
    Ok((Handshake { id, challenge }, Some(user)))
}

/// `login/webauthn/finish`: verifies the assertion with the passkey it names, records the
/// login on the passkey and the user, and starts a session.
pub async fn finish_login(
    p: &Passage,
    app: &App,
    handshake_id: &str,
    response: serde_json::Value,
    user_id: &str,
) -> Result<AuthResult, Error> {
    let login = relying_party::login_response(response)?;
    let (owner, state) = p
        .store
        .ceremony(&app.id, handshake_id, LOGIN, now_ms())
        .await?
        .ok_or(Error::PasskeyRefused {
            discoverable: false,
            reason: "the handshake is unknown, finished or expired",
        })?;
    finishing(p, app, handshake_id, LOGIN, async {
        verify_login(p, app, handshake_id, login, owner, state, user_id).await
    })
    .await
}

/// Checks a login against the ceremony `handshake_id` (of `owner`, empty for a login without
/// identifier, with its stored `state`), then ends the ceremony, records the login and starts
/// a session in one unit.
async fn verify_login(
    p: &Passage,
    app: &App,
    handshake_id: &str,
    login: PublicKeyCredential,
    owner: String,
    state: String,
    user_id: &str,
) -> Result<AuthResult, Error> {
    let discoverable = owner.is_empty();
    let refused = |reason| Error::PasskeyRefused {
        discoverable,
        reason,
    };
    let cred_id = crypto::base64url(login.get_credential_id());
    let (passkey, user_status) = p
        .store
        .passkey_by_cred_id(&app.id, &cred_id)
        .await?
        .ok_or(refused("this passkey is not registered"))?;
    let handle_matches = match login.get_user_unique_id() {
        Some(handle) => crypto::base64url(handle) == passkey.user_handle,
        None => !discoverable,
    };
    let owner_matches = discoverable || owner == passkey.user_id;
    if !handle_matches || !owner_matches || !(user_id.is_empty() || user_id == passkey.user_id) {
        return Err(refused("this passkey is not the user's"));
    }
    if user_status == UserStatus::Inactive {
        return Err(Error::Inactive);
    }

    let stored: Passkey = serde_json::from_str(&passkey.credential)
        .map_err(|e| Error::Internal(anyhow::anyhow!("stored passkey: {e}")))?;
    let stored = Credential::from(stored);
    let presented = relying_party::Presented::of(&login)?;
    // Both kinds of login state are one authentication state; finishing through the
    // discoverable path checks the signature against the stored credential with its
    // signals tolerated, so that only a verified login raises them.
    let state: DiscoverableAuthentication = serde_json::from_str(&state)
        .map_err(|e| Error::Internal(anyhow::anyhow!("stored login state: {e}")))?;
    let key = DiscoverableKey::from(Passkey::from(presented.tolerated(stored.clone())));
    let result = relying_party::of(app)?
        .finish_discoverable_authentication(&login, state, &[key])
        .map_err(|e| {
            tracing::debug!(app_id = %app.id, device_id = %passkey.id, "passkey login refused: {e}");
            refused("the passkey could not be verified")
        })?;

    let mut risk_signals = passkey.risk_signals.clone();
    let mut raised = Vec::new();
    for (signal, seen) in [
        (COUNTER_REGRESSED, presented.counter_regressed(&stored)),
        (
            BACKUP_ELIGIBILITY_CHANGED,
            presented.backup_eligibility_changed(&stored),
        ),
    ] {
        if seen {
            raised.push(signal);
            if !risk_signals.iter().any(|r| r == signal) {
                risk_signals.push(signal.to_string());
            }
        }
    }
    if !raised.is_empty() {
        let strict = app.settings.passkey_strict_mode;
        for signal in &raised {
            p.metrics.passkey_risk(signal, strict);
        }
        tracing::warn!(
            app_id = %app.id, user_id = %passkey.user_id, device_id = %passkey.id, signals = ?raised,
            strict, "passkey risk signal"
        );
        if strict {
            p.store
                .set_passkey_risk_signals(&app.id, &passkey.id, &risk_signals)
                .await?;
            return Err(refused(
                "this passkey may be cloned or changed; it is refused",
            ));
        }
    }
    let mut updated = stored;
    updated.counter = updated.counter.max(result.counter());
    updated.backup_eligible = result.backup_eligible();
    updated.backup_state = result.backup_state();
    let now = now_ms();
    let used = PasskeyUse {
        credential: to_json(&Passkey::from(updated.clone()))?,
        backup_eligible: updated.backup_eligible,
        backup_state: updated.backup_state,
        sign_count: i64::from(updated.counter),
        risk_signals,
        now,
    };
    let (result, then) = sessions::with_login(p, app, &passkey.user_id, now).await?;
    let end = Store::end_ceremony(&app.id, handshake_id, LOGIN, now).into();
    let steps = std::iter::once(Store::record_passkey_use(&app.id, &passkey.id, &used))
        .chain(then)
        .collect();
    if !p.store.commit(Unit::chain(end, steps)).await? {
        // Finished by a concurrent request, or the passkey was revoked meanwhile.
        return Err(refused("the handshake is finished or the passkey revoked"));
    }
    Ok(result)
}

async fn store_ceremony(
    p: &Passage,
    app: &App,
    kind: &'static str,
    user_id: &str,
    state: &impl serde::Serialize,
) -> Result<String, Error> {
    let id = crypto::random_id();
    let ceremony = CeremonyRow {
        id: id.clone(),
        app_id: app.id.clone(),
        kind,
        user_id: user_id.to_string(),
        state: to_json(state)?,
        expires_at: now_ms() + CEREMONY_TTL_MS,
    };
    p.store
        .commit(Unit::all(vec![Store::insert_ceremony(&ceremony)]))
        .await?;
    Ok(id)
}

/// Runs the checks of a ceremony's finish: when they fail the ceremony ends too, so that a
/// challenge is answered once, right or wrong.
async fn finishing<T>(
    p: &Passage,
    app: &App,
    handshake_id: &str,
    kind: &str,
    checks: impl std::future::Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    let outcome = checks.await;
    if outcome.is_err() {
        p.store
            .drop_ceremony(&app.id, handshake_id, kind, now_ms())
            .await?;
    }
    outcome
}

fn to_json(value: &impl serde::Serialize) -> Result<String, Error> {
    serde_json::to_string(value).map_err(|e| Error::Internal(e.into()))
}
