-- Passage apps, each with its settings (the App object), a hashed API key, and RS256 signing
-- keys: the newest signs, retired ones stay published until their tokens have expired.

create table passage_apps (
    id text primary key,
    name text not null,
    settings text not null,
    api_key_hash bytea not null unique,
    created_at bigint not null,
    updated_at bigint not null
);

create table signing_keys (
    kid text primary key,
    app_id text not null references passage_apps(id) on delete cascade,
    -- PKCS#8, sealed with the server secret.
    private_key bytea not null,
    public_jwk text not null,
    public_pem text not null,
    created_at bigint not null,
    retired_at bigint,
    publish_until bigint
);
create index signing_keys_app on signing_keys(app_id, created_at);
