-- An app may have several named API keys, each revocable; the key an app was created with
-- becomes its "default" key. passage_apps.api_key_hash keeps the first key's digest and is
-- no longer read.

create table passage_app_keys (
    id text primary key,
    app_id text not null references passage_apps(id) on delete cascade,
    name text not null,
    key_hash bytea not null unique,
    created_at bigint not null,
    revoked_at bigint
);
create index passage_app_keys_app on passage_app_keys(app_id, created_at);

insert into passage_app_keys (id, app_id, name, key_hash, created_at)
select 'key_' || id, id, 'default', api_key_hash, created_at from passage_apps;
