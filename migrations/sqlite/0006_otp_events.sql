-- Every OTP event is written here, by the database, in the statement that changes the OTP or
-- its delivery: checks and delivery attempts (0001), and resends, expiry and deletion. The
-- code writes no event itself, so no path can change an OTP without its history.

alter table otps add column resent_via text;

create trigger otps_resend_event after update of resend_count on otps
when new.resend_count > old.resend_count
begin
    insert into otp_events (otp_id, at, kind, detail)
    values (new.id, new.updated_at, 'RESEND', 'via ' || coalesce(new.resent_via, 'AUTO'));
end;

create trigger otps_expired_event after update of status on otps
when new.status = 'EXPIRED' and old.status <> 'EXPIRED'
begin
    insert into otp_events (otp_id, at, kind) values (new.id, new.updated_at, 'EXPIRED');
end;

create trigger otps_deleted_event after update of deleted_at on otps
when new.deleted_at is not null and old.deleted_at is null
begin
    insert into otp_events (otp_id, at, kind) values (new.id, new.updated_at, 'DELETED');
end;
