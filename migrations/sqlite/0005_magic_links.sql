-- Magic links: single-use login, sign-up and identifier-change links. The token is stored as
-- a digest; the link's id lets the device that asked for it poll for the session.

create table magic_links (
    id text primary key,
    app_id text not null references passage_apps(id) on delete cascade,
    user_id text not null references users(id) on delete cascade,
    -- login, verify_identifier, or update_email / update_phone (takes effect on activation).
    kind text not null,
    -- email or sms: the identifier that using the link proves.
    channel text not null,
    identifier text not null,
    token_hash blob not null unique,
    redirect_url text not null,
    expires_at bigint not null,
    activated_at bigint,
    -- When the polling device took its session.
    claimed_at bigint,
    created_at bigint not null
);
create index magic_links_app_user on magic_links(app_id, user_id);
