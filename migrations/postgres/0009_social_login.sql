-- Social login. A started flow (its state, PKCE verifier and nonce) and the one-time code
-- handed to the app are single-use, expiring ceremonies like those of passkeys, so the
-- ceremony table now holds both.

alter table webauthn_ceremonies rename to ceremonies;

-- An app's OAuth 2.0 / OpenID Connect providers, by connection type (google, github, apple,
-- or an operator's name for another provider).
create table social_connections (
    app_id text not null references passage_apps(id) on delete cascade,
    connection_type text not null,
    -- JSON: client id, issuer or endpoint URLs, Apple team and key ids.
    settings text not null,
    -- The client secret (Apple: the private key), sealed with the server key.
    secret_sealed bytea not null,
    created_at bigint not null,
    updated_at bigint not null,
    primary key (app_id, connection_type)
);

-- A user's identity at a provider: one per connection type, and one user per identity.
create table social_links (
    app_id text not null references passage_apps(id) on delete cascade,
    user_id text not null references users(id) on delete cascade,
    connection_type text not null,
    provider_id text not null,
    provider_identifier text not null,
    created_at bigint not null,
    last_login_at bigint not null,
    primary key (app_id, connection_type, provider_id)
);
create unique index social_links_user on social_links(user_id, connection_type);
