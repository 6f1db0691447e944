//! Phone numbers: parsed with libphonenumber's metadata, kept in E.164.

use std::{fmt, str::FromStr};

use phonenumber::{country, Type};

use crate::error::Error;

/// A valid phone number in E.164 form (`+4989202451100`).
#[derive(Clone, PartialEq, Eq)]
pub struct PhoneNumber {
    e164: String,
    region: Option<country::Id>,
    voice_only: bool,
}

impl PhoneNumber {
    /// Accepts `+4989...`, the `00` international prefix (`004989...`), and national numbers
    /// when `country` (ISO 3166-1 alpha-2) is given. Spaces, dashes, dots and brackets are
    /// ignored.
    pub fn parse(input: &str, country: Option<&str>) -> Result<Self, Error> {
        let bad = |reason: &str| Error::invalid("number", reason.to_string());
        let cleaned: String = input
            .trim()
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')' | '/'))
            .collect();
        if cleaned.is_empty() {
            return Err(bad("a phone number is required"));
        }
        let cleaned = match cleaned.strip_prefix("00") {
            Some(rest) => format!("+{rest}"),
            None => cleaned,
        };
        let digits = cleaned.strip_prefix('+').unwrap_or(&cleaned);
        if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(bad("only digits, an optional leading + or 00"));
        }
        let region = match country {
            Some(c) => Some(
                country::Id::from_str(&c.trim().to_ascii_uppercase()).map_err(|_| {
                    Error::invalid("country", "expected an ISO 3166-1 alpha-2 code")
                })?,
            ),
            None => None,
        };
        if !cleaned.starts_with('+') && region.is_none() {
            return Err(bad(
                "use international format (+ or 00) or give the country",
            ));
        }
        let parsed = phonenumber::parse(region, &cleaned).map_err(|_| bad("not a phone number"))?;
        // The number's type is what validity is judged by: unknown means not valid.
        let number_type = parsed.number_type(&phonenumber::metadata::DATABASE);
        if number_type == Type::Unknown {
            return Err(bad("not a valid phone number"));
        }
        let voice_only = matches!(
            number_type,
            Type::FixedLine | Type::TollFree | Type::SharedCost | Type::Uan | Type::Voicemail
        );
        Ok(PhoneNumber {
            e164: parsed.format().mode(phonenumber::Mode::E164).to_string(),
            region: parsed.country().id(),
            voice_only,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.e164
    }

    /// Fixed-line and similar numbers cannot take an SMS: AUTO calls them.
    pub fn is_voice_only(&self) -> bool {
        self.voice_only
    }

    /// The number's country (ISO 3166-1 alpha-2), when the number plan tells.
    pub fn region(&self) -> Option<&str> {
        self.region.as_ref().map(|id| id.as_ref())
    }

    /// The language most people at this number's country read, for templates.
    pub fn country_language(&self) -> Option<&'static str> {
        self.region().and_then(language_of)
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.e164)
    }
}

impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PhoneNumber({})", self.e164)
    }
}

fn language_of(region: &str) -> Option<&'static str> {
    Some(match region {
        "DE" | "AT" | "LI" => "de",
        "FR" | "BE" | "LU" | "MC" => "fr",
        "CH" => "de",
        "ES" | "MX" | "AR" | "CO" | "CL" | "PE" | "VE" | "EC" | "UY" | "PY" | "BO" => "es",
        "IT" | "SM" | "VA" => "it",
        "NL" => "nl",
        "PT" | "BR" | "AO" | "MZ" => "pt",
        "PL" => "pl",
        "CZ" => "cs",
        "SK" => "sk",
        "HU" => "hu",
        "RO" | "MD" => "ro",
        "BG" => "bg",
        "GR" | "CY" => "el",
        "TR" => "tr",
        "RU" | "BY" | "KZ" => "ru",
        "UA" => "uk",
        "SE" => "sv",
        "NO" => "no",
        "DK" => "da",
        "FI" => "fi",
        "JP" => "ja",
        "CN" | "TW" | "HK" => "zh",
        "KR" => "ko",
        "US" | "GB" | "IE" | "AU" | "NZ" | "CA" | "ZA" | "SG" | "IN" => "en",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_the_seed_number() {
        let n = PhoneNumber::parse("004989202451100", None).unwrap();
        assert_eq!(n.as_str(), "+4989202451100");
        assert!(n.is_voice_only(), "a Munich landline cannot take SMS");
        assert_eq!(n.country_language(), Some("de"));
    }

    #[test]
    fn mobiles_take_sms() {
        let n = PhoneNumber::parse("+49 151 23456789", None).unwrap();
        assert_eq!(n.as_str(), "+4915123456789");
        assert!(!n.is_voice_only());
    }

    #[test]
    fn national_numbers_need_a_country() {
        assert!(PhoneNumber::parse("015123456789", None).is_err());
        let n = PhoneNumber::parse("015123456789", Some("de")).unwrap();
        assert_eq!(n.as_str(), "+4915123456789");
        assert!(PhoneNumber::parse("015123456789", Some("XX")).is_err());
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "abc",
            "+",
            "+12",
            "++4915123456789",
            "+49151234567890123",
        ] {
            assert!(PhoneNumber::parse(bad, None).is_err(), "{bad}");
        }
    }
}
