//! The JSON shapes of the Passage Auth and Manage APIs, typed. No field is ever absent or
//! `null` where the SDKs expect a value: empty strings, `0001-01-01T00:00:00Z` for "never",
//! empty arrays and objects.

mod app;
mod login;
mod passkey;
mod user;

pub use app::*;
pub use login::*;
pub use passkey::*;
pub use user::*;
