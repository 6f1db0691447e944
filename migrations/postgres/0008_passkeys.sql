-- Passkeys (WebAuthn credentials) and the state of WebAuthn ceremonies between their start
-- and finish, kept here so that any node can finish a ceremony another node started.

create table passkeys (
    id text primary key,
    app_id text not null references passage_apps(id) on delete cascade,
    user_id text not null references users(id) on delete cascade,
    -- base64url, as the browser sends it in rawId.
    cred_id text not null,
    -- base64url of the user handle the authenticator holds (the user id's bytes).
    user_handle text not null,
    -- The verified credential (public key, counter, flags) as JSON.
    credential text not null,
    friendly_name text not null,
    -- JSON array of transport names.
    transports text not null,
    aaguid text not null,
    backup_eligible bigint not null,
    backup_state bigint not null,
    sign_count bigint not null,
    -- JSON array of risk signals seen at logins: counter_regressed, backup_eligibility_changed.
    risk_signals text not null,
    usage_count bigint not null default 0,
    last_login_at bigint,
    created_at bigint not null,
    updated_at bigint not null
);
create unique index passkeys_app_cred on passkeys(app_id, cred_id);
create index passkeys_user on passkeys(user_id);

create table webauthn_ceremonies (
    id text primary key,
    app_id text not null references passage_apps(id) on delete cascade,
    -- register, login or add_device.
    kind text not null,
    -- The user the ceremony is for; empty for a login without identifier.
    user_id text not null,
    -- The relying party's state (challenge and policy) as JSON.
    state text not null,
    expires_at bigint not null
);
create index webauthn_ceremonies_expiry on webauthn_ceremonies(expires_at);
