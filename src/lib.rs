//! Keyhaven: a self-hosted authentication server speaking the tyntec 2FA v1 API and the
//! Passage Auth and Manage APIs.

pub mod bench;
pub mod cli;
pub mod client_address;
pub mod config;
pub mod crypto;
pub mod delivery;
pub mod domain;
pub mod error;
pub mod files;
pub mod hosted;
mod http;
pub mod key_cache;
pub mod metrics;
pub mod ops;
pub mod passage;
pub mod passage_auth;
pub mod passage_http;
pub mod passage_manage;
pub mod server;
pub mod state;
pub mod storage;
pub mod throttle;
pub mod ttl_cache;
pub mod tyntec;
