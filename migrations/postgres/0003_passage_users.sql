-- Users of Passage apps. Email and phone are unique within an app when present.

create table users (
    id text primary key,
    app_id text not null references passage_apps(id) on delete cascade,
    email text,
    phone text,
    email_verified bigint not null default 0,
    phone_verified bigint not null default 0,
    status text not null,
    user_metadata text,
    external_id text not null default '',
    login_count bigint not null default 0,
    last_login_at bigint,
    created_at bigint not null,
    updated_at bigint not null
);
create unique index users_app_email on users(app_id, email) where email is not null;
create unique index users_app_phone on users(app_id, phone) where phone is not null;
create index users_app_created on users(app_id, created_at);
