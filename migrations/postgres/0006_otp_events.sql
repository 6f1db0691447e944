-- Every OTP event is written here, by the database, in the statement that changes the OTP or
-- its delivery: checks and delivery attempts (0001), and resends, expiry and deletion. The
-- code writes no event itself, so no path can change an OTP without its history.

alter table otps add column resent_via text;

create function otps_lifecycle_event() returns trigger language plpgsql as $$
begin
    if new.resend_count > old.resend_count then
        insert into otp_events (otp_id, at, kind, detail)
        values (new.id, new.updated_at, 'RESEND', 'via ' || coalesce(new.resent_via, 'AUTO'));
    end if;
    if new.status = 'EXPIRED' and old.status <> 'EXPIRED' then
        insert into otp_events (otp_id, at, kind) values (new.id, new.updated_at, 'EXPIRED');
    end if;
    if new.deleted_at is not null and old.deleted_at is null then
        insert into otp_events (otp_id, at, kind) values (new.id, new.updated_at, 'DELETED');
    end if;
    return null;
end $$;
create trigger otps_lifecycle_event after update of resend_count, status, deleted_at on otps
for each row execute function otps_lifecycle_event();
