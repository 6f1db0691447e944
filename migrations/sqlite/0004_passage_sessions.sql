-- One-time passcodes of Passage logins, and refresh tokens. A refresh token is rotated once:
-- its successor is kept sealed for the grace window, so parallel tabs get the same one.

create table passcodes (
    id text primary key,
    app_id text not null references passage_apps(id) on delete cascade,
    user_id text not null references users(id) on delete cascade,
    -- email or sms: the identifier a correct code proves.
    channel text not null,
    code_hash blob not null,
    attempts bigint not null default 0,
    max_attempts bigint not null,
    expires_at bigint not null,
    used_at bigint,
    created_at bigint not null
);

create table refresh_tokens (
    id text primary key,
    app_id text not null references passage_apps(id) on delete cascade,
    user_id text not null references users(id) on delete cascade,
    family_id text not null,
    token_hash blob not null unique,
    created_at bigint not null,
    expires_at bigint not null,
    rotated_at bigint,
    successor_sealed blob,
    revoked_at bigint
);
create index refresh_tokens_user on refresh_tokens(app_id, user_id);
create index refresh_tokens_family on refresh_tokens(family_id);
