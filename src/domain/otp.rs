//! One-time password values: codes, lengths, channels and statuses.

use std::fmt;

use crate::error::Error;

pub const MIN_CODE_LEN: usize = 4;
pub const MAX_CODE_LEN: usize = 10;

/// A one-time code as a person types it: 4 to 10 letters or digits. Letters are compared
/// without regard to case, so they are kept in upper case. `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct OtpCode(String);

impl OtpCode {
    pub fn parse(field: &'static str, input: &str) -> Result<Self, Error> {
        let s = input.trim();
        if !(MIN_CODE_LEN..=MAX_CODE_LEN).contains(&s.len()) {
            return Err(Error::invalid(field, "must be 4 to 10 characters"));
        }
        if !s.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(Error::invalid(field, "only letters and digits"));
        }
        Ok(OtpCode(s.to_ascii_uppercase()))
    }

    /// A code presented for checking. Some clients type the code as an integer and so drop
    /// leading zeros (`427` for `0427`): a shorter, all-digit answer is left-padded to the
    /// stored code's length.
    pub fn for_check(input: &str, stored_len: usize) -> Option<Self> {
        let s = input.trim();
        if s.is_empty() || s.len() > MAX_CODE_LEN || !s.chars().all(|c| c.is_ascii_alphanumeric()) {
            return None;
        }
        if s.len() < stored_len && s.chars().all(|c| c.is_ascii_digit()) {
            return Some(OtpCode(format!("{s:0>stored_len$}")));
        }
        Some(OtpCode(s.to_ascii_uppercase()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for OtpCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OtpCode(***)")
    }
}

/// Length of generated codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PinLength(u8);

impl PinLength {
    pub fn new(n: i64) -> Result<Self, Error> {
        if (MIN_CODE_LEN as i64..=MAX_CODE_LEN as i64).contains(&n) {
            Ok(PinLength(n as u8))
        } else {
            Err(Error::invalid("pinLength", "must be between 4 and 10"))
        }
    }

    pub fn get(self) -> usize {
        self.0 as usize
    }
}

/// The requested delivery channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Sms,
    Voice,
    /// SMS where the number can take one, voice otherwise or when SMS fails.
    Auto,
}

impl Via {
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Sms => "SMS",
            Via::Voice => "VOICE",
            Via::Auto => "AUTO",
        }
    }

    pub fn parse(s: &str) -> Result<Self, Error> {
        match s.trim().to_ascii_uppercase().as_str() {
            "SMS" => Ok(Via::Sms),
            "VOICE" => Ok(Via::Voice),
            "AUTO" | "" => Ok(Via::Auto),
            _ => Err(Error::invalid("via", "must be SMS, VOICE or AUTO")),
        }
    }
}

/// The lifecycle of a tyntec OTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtpStatus {
    Active,
    Verified,
    Expired,
    TooManyAttempts,
}

impl OtpStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OtpStatus::Active => "ACTIVE",
            OtpStatus::Verified => "VERIFIED",
            OtpStatus::Expired => "EXPIRED",
            OtpStatus::TooManyAttempts => "TOO_MANY_ATTEMPTS",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ACTIVE" => Some(OtpStatus::Active),
            "VERIFIED" => Some(OtpStatus::Verified),
            "EXPIRED" => Some(OtpStatus::Expired),
            "TOO_MANY_ATTEMPTS" => Some(OtpStatus::TooManyAttempts),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        assert_eq!(
            OtpCode::parse("otpCode", " ab12 ").unwrap().expose(),
            "AB12"
        );
        assert!(OtpCode::parse("otpCode", "123").is_err());
        assert!(OtpCode::parse("otpCode", "12345678901").is_err());
        assert!(OtpCode::parse("otpCode", "12-4").is_err());
    }

    #[test]
    fn integer_typed_codes_are_left_padded() {
        assert_eq!(OtpCode::for_check("427", 4).unwrap().expose(), "0427");
        assert_eq!(OtpCode::for_check("0427", 4).unwrap().expose(), "0427");
        // Alphanumeric input is compared as typed (upper-cased), never padded.
        assert_eq!(OtpCode::for_check("a7", 4).unwrap().expose(), "A7");
        assert!(OtpCode::for_check("", 4).is_none());
        assert!(OtpCode::for_check("12 4", 4).is_none());
    }

    #[test]
    fn pin_length_and_via() {
        assert!(PinLength::new(3).is_err());
        assert_eq!(PinLength::new(10).unwrap().get(), 10);
        assert!(PinLength::new(11).is_err());
        assert_eq!(Via::parse("voice").unwrap(), Via::Voice);
        assert!(Via::parse("fax").is_err());
    }

    #[test]
    fn debug_hides_codes() {
        assert!(!format!("{:?}", OtpCode::parse("c", "9876").unwrap()).contains("9876"));
    }
}
