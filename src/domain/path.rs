//! Paths on an app's own origin: the pages links open and sessions return to.

use crate::error::Error;

/// A path on the app's origin, starting with `/` (`/login`, `/welcome?step=2`). Anything that
/// could lead elsewhere (a scheme, another host, `//`, a backslash that browsers read as a
/// slash) is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalPath(String);

/// The query parameter the app's page reads a magic link's token from, as Passage's elements
/// do.
pub const TOKEN_PARAM: &str = "psg_magic_link";

impl LocalPath {
    /// A path that sessions return to: a query is allowed.
    pub fn parse(field: &'static str, input: &str) -> Result<LocalPath, Error> {
        let path = input.trim();
        let ok = path.starts_with('/')
            && !path.starts_with("//")
            && !path.contains('\\')
            && !path.chars().any(|c| c.is_control() || c.is_whitespace())
            && path.len() <= 2048;
        if !ok {
            return Err(Error::invalid(
                field,
                "must be a path on the app's origin, starting with `/`",
            ));
        }
        Ok(LocalPath(path.to_string()))
    }

    /// A path a magic link's token is appended to: no query or fragment of its own, so that
    /// nobody can put a token of theirs in front of the real one.
    pub fn for_link(field: &'static str, input: &str) -> Result<LocalPath, Error> {
        let path = LocalPath::parse(field, input)?;
        if path.0.contains(['?', '#']) || path.0.contains(TOKEN_PARAM) {
            return Err(Error::invalid(
                field,
                "must be a path without a query or fragment",
            ));
        }
        Ok(path)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_on_the_app_origin() {
        assert_eq!(
            LocalPath::parse("p", " /a?b=1 ").unwrap().as_str(),
            "/a?b=1"
        );
        for bad in [
            "https://evil.test/",
            "//evil.test/x",
            "/\\evil.test",
            "evil",
            "/a b",
            "/a\r\nb",
        ] {
            assert!(LocalPath::parse("p", bad).is_err(), "{bad}");
            assert!(LocalPath::for_link("p", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn link_paths_carry_no_query_of_their_own() {
        assert_eq!(
            LocalPath::for_link("p", "/login").unwrap().as_str(),
            "/login"
        );
        for bad in [
            "/?psg_magic_link=ATTACKER&x=",
            "/a?b=1",
            "/a#b",
            "/psg_magic_link",
        ] {
            assert!(LocalPath::for_link("p", bad).is_err(), "{bad}");
        }
    }
}
