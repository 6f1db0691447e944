//! Moving users between Passage (or another Keyhaven) and this server: `import` reads the
//! export records, checks each one with the rules the API applies (identifiers, status,
//! the app's metadata schema, passkey public keys) and writes them in batches, each batch
//! one unit; `export` writes the same records back. Importing a file again changes nothing;
//! a changed record updates its user; a record that cannot be imported is reported with its
//! reason and leaves nothing behind.

mod prepare;
pub mod public_key;
pub mod record;

use std::collections::HashMap;

use serde::Serialize;
use webauthn_rs::prelude::{Credential, Passkey};

use super::{wire::iso_or_never, App, Passage};
use crate::{
    domain::{iso_ms, now_ms},
    error::Error,
    storage::{PasskeyRow, Statement, Store, Unit, User},
};
use prepare::Prepared;
use record::{DeviceRecord, Read, UserRecord};

/// Records written per unit.
const BATCH: usize = 400;
/// Batches between two refreshes of the database's statistics.
const BATCHES_PER_ANALYZE: usize = 10;

/// What an import did.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub app_id: String,
    pub read: usize,
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub passkeys_created: usize,
    pub passkeys_updated: usize,
    pub skipped: Vec<Note>,
    pub warnings: Vec<Note>,
}

/// A record the report speaks of: where it is in the file, its user id, and what happened.
#[derive(Debug, Serialize)]
pub struct Note {
    pub at: usize,
    pub id: String,
    pub reason: String,
}

/// Imports `reads` into `app`, calling `progress(done, total)` after each batch.
pub async fn import(
    p: &Passage,
    app: &App,
    reads: Vec<Read>,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Report, Error> {
    let mut report = Report {
        app_id: app.id.clone(),
        read: reads.len(),
        ..Report::default()
    };
    let total = reads.len();
    // What earlier records of the file claimed: a later duplicate is skipped.
    let mut claimed: HashMap<String, usize> = HashMap::new();
    let mut prepared = Vec::with_capacity(total);
    let now = now_ms();
    for read in reads {
        let at = read.at;
        let record = match read.record {
            Ok(record) => record,
            Err(reason) => {
                report.skipped.push(Note {
                    at,
                    id: String::new(),
                    reason: format!("unreadable record: {reason}"),
                });
                continue;
            }
        };
        match prepare::prepare(app, record, at, now) {
            Ok((record, warnings)) => {
                for reason in warnings {
                    let id = record.user.id.clone();
                    report.warnings.push(Note { at, id, reason });
                }
                match first_claim(&mut claimed, &record) {
                    Ok(()) => prepared.push(record),
                    Err(reason) => report.skipped.push(Note {
                        at,
                        id: record.user.id,
                        reason,
                    }),
                }
            }
            Err((id, reason)) => report.skipped.push(Note { at, id, reason }),
        }
    }
    let mut done = total - prepared.len();
    for (n, batch) in prepared.chunks_mut(BATCH).enumerate() {
        if n % BATCHES_PER_ANALYZE == 1 {
            p.store.refresh_statistics().await?;
        }
        write_batch(p, app, batch, &mut report).await?;
        done += batch.len();
        progress(done, total);
    }
    report.skipped.sort_by_key(|n| n.at);
    Ok(report)
}

/// The user id, identifiers and credential ids a record claims, unless an earlier record of
/// the file claimed one of them.
fn first_claim(claimed: &mut HashMap<String, usize>, r: &Prepared) -> Result<(), String> {
    let mut keys = vec![format!("id {}", r.user.id)];
    keys.extend(r.user.email.iter().map(|e| format!("email {e}")));
    keys.extend(r.user.phone.iter().map(|ph| format!("phone {ph}")));
    keys.extend(
        r.passkeys
            .iter()
            .map(|k| format!("credential {}", k.cred_id)),
    );
    if let Some((key, at)) = keys.iter().find_map(|k| claimed.get(k).map(|at| (k, *at))) {
        return Err(format!("duplicate {key}: the record at {at} has it"));
    }
    for key in keys {
        claimed.insert(key, r.at);
    }
    Ok(())
}

/// Writes one batch as one unit; when the unit fails, record by record, so that only the
/// records at fault are skipped.
async fn write_batch(
    p: &Passage,
    app: &App,
    batch: &mut [Prepared],
    report: &mut Report,
) -> Result<(), Error> {
    let identifiers: Vec<&str> = batch
        .iter()
        .flat_map(|r| r.user.email.iter().chain(r.user.phone.iter()))
        .map(String::as_str)
        .collect();
    let owners: HashMap<String, String> = p
        .store
        .identifier_owners(&app.id, &identifiers)
        .await?
        .into_iter()
        .collect();
    // A record without id (the CSV template) is the user holding its email or phone.
    for r in batch
        .iter_mut()
        .filter(|r| !r.id_given && r.passkeys.is_empty())
    {
        let owner = r
            .user
            .email
            .iter()
            .chain(r.user.phone.iter())
            .find_map(|i| owners.get(i));
        if let Some(owner) = owner {
            r.user.id = owner.clone();
        }
    }
    let batch = &*batch;
    let ids: Vec<&str> = batch.iter().map(|r| r.user.id.as_str()).collect();
    let existing: HashMap<String, User> = p
        .store
        .users_by_ids(&app.id, &ids)
        .await?
        .into_iter()
        .map(|u| (u.id.clone(), u))
        .collect();
    let cred_ids: Vec<&str> = batch
        .iter()
        .flat_map(|r| r.passkeys.iter().map(|k| k.cred_id.as_str()))
        .collect();
    let stored_keys: HashMap<String, PasskeyRow> = p
        .store
        .passkeys_by_cred_ids(&app.id, &cred_ids)
        .await?
        .into_iter()
        .map(|k| (k.cred_id.clone(), k))
        .collect();

    let mut plans = Vec::new();
    for r in batch {
        match plan(r, existing.get(&r.user.id), &owners, &stored_keys) {
            Ok(plan) => plans.push((r, plan)),
            Err(reason) => report.skipped.push(Note {
                at: r.at,
                id: r.user.id.clone(),
                reason,
            }),
        }
    }
    let statements: Vec<Statement> = plans
        .iter()
        .flat_map(|(_, plan)| plan.statements.iter().cloned())
        .collect();
    if statements.is_empty() || p.store.commit(Unit::all(statements)).await.is_ok() {
        for (_, plan) in &plans {
            plan.count(report);
        }
        return Ok(());
    }
    for (r, plan) in plans {
        if plan.statements.is_empty() {
            plan.count(report);
            continue;
        }
        match p.store.commit(Unit::all(plan.statements.clone())).await {
            Ok(_) => plan.count(report),
            Err(Error::Conflict(_)) => report.skipped.push(Note {
                at: r.at,
                id: r.user.id.clone(),
                reason: "an identifier or credential is taken (changed while importing)".into(),
            }),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The writes one record needs.
struct Plan {
    user: Change,
    passkeys_created: usize,
    passkeys_updated: usize,
    statements: Vec<Statement>,
}

#[derive(PartialEq)]
enum Change {
    Created,
    Updated,
    Unchanged,
}

impl Plan {
    fn count(&self, report: &mut Report) {
        match self.user {
            Change::Created => report.created += 1,
            Change::Updated => report.updated += 1,
            Change::Unchanged => report.unchanged += 1,
        }
        report.passkeys_created += self.passkeys_created;
        report.passkeys_updated += self.passkeys_updated;
    }
}

fn plan(
    r: &Prepared,
    existing: Option<&User>,
    owners: &HashMap<String, String>,
    stored_keys: &HashMap<String, PasskeyRow>,
) -> Result<Plan, String> {
    for identifier in r.user.email.iter().chain(r.user.phone.iter()) {
        if let Some(owner) = owners.get(identifier).filter(|o| **o != r.user.id) {
            return Err(format!("{identifier} belongs to another user ({owner})"));
        }
    }
    let mut statements = Vec::new();
    let mut user = r.user.clone();
    let user = match existing {
        None => {
            statements.push(Store::new_user(&user).into());
            Change::Created
        }
        Some(old) => {
            if !r.created_given {
                user.created_at = old.created_at;
            }
            // Logins here since the export count; the file does not take them back.
            user.login_count = user.login_count.max(old.login_count);
            user.last_login_at = user.last_login_at.max(old.last_login_at);
            if same_user(old, &user) {
                Change::Unchanged
            } else {
                user.updated_at = now_ms();
                statements.push(Store::update_imported_user(&user).into());
                Change::Updated
            }
        }
    };
    let (mut passkeys_created, mut passkeys_updated) = (0, 0);
    for key in &r.passkeys {
        match stored_keys.get(&key.cred_id) {
            None => {
                statements.push(Store::insert_passkey(key).into());
                passkeys_created += 1;
            }
            Some(old) if old.user_id != r.user.id => {
                return Err(format!(
                    "credential {} belongs to another user ({})",
                    key.cred_id, old.user_id
                ));
            }
            Some(old) => {
                // Logins since the export moved the counter on; the file does not take it back.
                let mut key = key.clone();
                key.sign_count = key.sign_count.max(old.sign_count);
                key.usage_count = key.usage_count.max(old.usage_count);
                key.last_login_at = key.last_login_at.max(old.last_login_at);
                if !same_passkey(old, &key) {
                    key.updated_at = now_ms();
                    statements.push(Store::update_imported_passkey(&key).into());
                    passkeys_updated += 1;
                }
            }
        }
    }
    let user = if user == Change::Unchanged && passkeys_created + passkeys_updated > 0 {
        Change::Updated
    } else {
        user
    };
    Ok(Plan {
        user,
        passkeys_created,
        passkeys_updated,
        statements,
    })
}

fn same_user(a: &User, b: &User) -> bool {
    a.email == b.email
        && a.phone == b.phone
        && a.email_verified == b.email_verified
        && a.phone_verified == b.phone_verified
        && a.status == b.status
        && a.user_metadata == b.user_metadata
        && a.external_id == b.external_id
        && a.login_count == b.login_count
        && a.last_login_at == b.last_login_at
        && a.created_at == b.created_at
}

fn same_passkey(a: &PasskeyRow, b: &PasskeyRow) -> bool {
    let key = |k: &PasskeyRow| {
        serde_json::from_str::<Passkey>(&k.credential)
            .ok()
            .map(|pk| Credential::from(pk).cred)
    };
    a.user_handle == b.user_handle
        && a.friendly_name == b.friendly_name
        && a.transports == b.transports
        && a.aaguid == b.aaguid
        && a.backup_eligible == b.backup_eligible
        && a.backup_state == b.backup_state
        && a.sign_count == b.sign_count
        && a.usage_count == b.usage_count
        && a.last_login_at == b.last_login_at
        && key(a).is_some()
        && key(a) == key(b)
}

/// Users written per page of an export.
const EXPORT_PAGE: i64 = 1000;

/// Writes every user of `app` with their passkeys as records, one JSON object per line;
/// (users, passkeys) written.
pub async fn export(
    p: &Passage,
    app: &App,
    out: &mut dyn std::io::Write,
) -> Result<(usize, usize), Error> {
    let (mut users, mut passkeys) = (0, 0);
    let mut after = String::new();
    loop {
        let page = p.store.users_after(&app.id, &after, EXPORT_PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.id.clone();
        let ids: Vec<String> = page.iter().map(|u| u.id.clone()).collect();
        let keys = p.store.passkeys_of_users(&app.id, &ids).await?;
        for user in &page {
            let devices = keys
                .iter()
                .filter(|k| k.user_id == user.id)
                .map(device_record)
                .collect::<Result<Vec<_>, _>>()?;
            passkeys += devices.len();
            let record = user_record(user, devices);
            serde_json::to_writer(&mut *out, &record).map_err(|e| Error::Internal(e.into()))?;
            out.write_all(b"\n")
                .map_err(|e| Error::Internal(e.into()))?;
            users += 1;
        }
    }
    Ok((users, passkeys))
}

fn user_record(u: &User, webauthn_devices: Vec<DeviceRecord>) -> UserRecord {
    UserRecord {
        id: u.id.clone(),
        email: u.email.clone().unwrap_or_default(),
        phone: u.phone.clone().unwrap_or_default(),
        email_verified: u.email_verified,
        phone_verified: u.phone_verified,
        status: u.status.as_str().into(),
        user_metadata: Some(u.user_metadata.clone()),
        external_id: u.external_id.clone(),
        created_at: iso_ms(u.created_at),
        updated_at: iso_ms(u.updated_at),
        last_login_at: iso_or_never(u.last_login_at),
        login_count: u.login_count,
        webauthn_devices,
        other: Default::default(),
    }
}

fn device_record(k: &PasskeyRow) -> Result<DeviceRecord, Error> {
    let passkey: Passkey = serde_json::from_str(&k.credential)
        .map_err(|e| Error::Internal(anyhow::anyhow!("stored passkey: {e}")))?;
    let public_key = public_key::to_cose(&Credential::from(passkey).cred)
        .map_err(|e| Error::Internal(anyhow::anyhow!("passkey public key: {e}")))?;
    Ok(DeviceRecord {
        id: k.id.clone(),
        cred_id: k.cred_id.clone(),
        public_key,
        sign_count: k.sign_count,
        transports: k.transports.clone(),
        friendly_name: k.friendly_name.clone(),
        created_at: iso_ms(k.created_at),
        last_login_at: iso_or_never(k.last_login_at),
        backup_eligible: k.backup_eligible,
        backup_state: k.backup_state,
        aaguid: k.aaguid.clone(),
        user_handle: k.user_handle.clone(),
        usage_count: k.usage_count,
        other: Default::default(),
    })
}
