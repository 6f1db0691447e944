-- Accounts and API keys of the tyntec 2FA surface, 2FA applications, OTPs with their event
-- history, the delivery outbox and throttle counters. Times are epoch milliseconds.

create table accounts (
    id text primary key,
    name text not null,
    created_at bigint not null
);

create table api_keys (
    id text primary key,
    account_id text not null references accounts(id) on delete cascade,
    key_hash blob not null unique,
    label text not null default '',
    created_at bigint not null,
    revoked_at bigint
);
create index api_keys_account on api_keys(account_id);

create table tfa_applications (
    id text primary key,
    account_id text not null references accounts(id) on delete cascade,
    name text not null,
    is_default integer not null default 0,
    pin_length bigint not null,
    alphanumeric integer not null,
    attempts bigint not null,
    expire_seconds bigint not null,
    sender text not null,
    caller text,
    templates text not null,
    created_at bigint not null,
    updated_at bigint not null
);
create index tfa_applications_account on tfa_applications(account_id, created_at);

create table otps (
    id text primary key,
    account_id text not null,
    application_id text not null,
    number text not null,
    code_hash blob not null,
    code_sealed blob not null,
    code_length bigint not null,
    custom_text text,
    language text,
    sender text,
    caller text,
    reference_id text,
    via text not null,
    status text not null,
    attempt_count bigint not null default 0,
    max_attempts bigint not null,
    resend_count bigint not null default 0,
    created_at bigint not null,
    expires_at bigint not null,
    updated_at bigint not null,
    deleted_at bigint
);
create index otps_account_created on otps(account_id, created_at);
create index otps_account_number on otps(account_id, number);

create table otp_events (
    id integer primary key autoincrement,
    otp_id text not null,
    at bigint not null,
    kind text not null,
    channel text,
    provider text,
    detail text
);
create index otp_events_otp on otp_events(otp_id, id);

create table deliveries (
    id text primary key,
    otp_id text,
    channel text not null,
    fallback_channel text,
    recipient text not null,
    payload blob not null,
    status text not null,
    attempts bigint not null default 0,
    next_attempt_at bigint not null,
    locked_until bigint not null default 0,
    last_error text,
    -- The last settled attempt; each settlement bumps settle_count, which records an event.
    last_outcome text,
    last_provider text,
    settle_count bigint not null default 0,
    created_at bigint not null,
    updated_at bigint not null
);
create index deliveries_due on deliveries(status, next_attempt_at);

create table rate_counters (
    bucket text not null,
    window_start bigint not null,
    count bigint not null,
    primary key (bucket, window_start)
);

-- Events that must be written with a state change are written by the database in the same
-- statement, so the hot paths (a check, a delivery attempt) are one autocommit statement.
create trigger otps_check_event after update of attempt_count on otps
when new.attempt_count > old.attempt_count
begin
    insert into otp_events (otp_id, at, kind, detail)
    values (new.id, new.updated_at,
            case when new.status = 'VERIFIED' then 'CHECK_VERIFIED' else 'CHECK_FAILED' end,
            'attempt ' || new.attempt_count || ' of ' || new.max_attempts);
end;

create trigger deliveries_attempt_event after update of settle_count on deliveries
when new.otp_id is not null and new.settle_count > old.settle_count
begin
    insert into otp_events (otp_id, at, kind, channel, provider, detail)
    values (new.otp_id, new.updated_at, new.last_outcome, old.channel, new.last_provider,
            new.last_error);
end;
