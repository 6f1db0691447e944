//! The integration suite: one binary, every scenario against a real server over real HTTP,
//! on SQLite and (with `KEYHAVEN_TEST_POSTGRES_URL`) PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;
mod passage;

mod cli;
mod durability;
mod hosted_page;
mod import;
mod import_keys;
mod ops;
mod passage_apps;
mod passage_contract;
mod passage_current_user;
mod passage_magic_links;
mod passage_manage;
mod passage_sessions;
mod passkeys;
mod rejections;
mod social;
mod storage;
mod transport;
mod tyntec_applications;
mod tyntec_connector;
mod tyntec_delivery;
mod tyntec_errors;
mod tyntec_otp;
mod tyntec_races;
