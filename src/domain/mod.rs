//! Parsed values shared by the surfaces: input is checked once, at the edge, into these types.

mod email;
mod otp;
mod path;
mod phone;
mod user;

pub use email::Email;
pub use otp::{OtpCode, OtpStatus, PinLength, Via, MAX_CODE_LEN, MIN_CODE_LEN};
pub use path::{LocalPath, TOKEN_PARAM};
pub use phone::PhoneNumber;
pub use user::{Channel, LinkKind, UserStatus};

/// Current time as epoch milliseconds, the unit every stored time uses.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// `2017-07-10T08:57:41.834Z`: ISO-8601 UTC with milliseconds, as the contracts show.
pub fn iso_ms(epoch_ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(epoch_ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// ISO 639-1 language code, lower case (`en`, `de`).
pub fn parse_language(s: &str) -> Result<String, crate::error::Error> {
    let s = s.trim();
    if s.len() == 2 && s.chars().all(|c| c.is_ascii_alphabetic()) {
        Ok(s.to_ascii_lowercase())
    } else {
        Err(crate::error::Error::invalid(
            "language",
            "expected a two-letter ISO 639-1 code",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_ms_matches_the_seed_example() {
        assert_eq!(iso_ms(1499677061834), "2017-07-10T08:57:41.834Z");
        assert_eq!(iso_ms(1499677361834), "2017-07-10T09:02:41.834Z");
    }

    #[test]
    fn languages() {
        assert_eq!(parse_language("DE").unwrap(), "de");
        assert!(parse_language("deu").is_err());
        assert!(parse_language("d1").is_err());
    }
}
