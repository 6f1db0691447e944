//! What the Passage routers share: the error shape, request extractors, CORS and the
//! per-client throttle. No routes and no rules: those are the routers' and the core's.

pub mod cors;
pub mod error;
pub mod extract;
pub mod throttle;

pub use error::{panic_response, unknown_route, wrong_method, PassageError};
