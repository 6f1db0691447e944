//! Secrets: random tokens, digests for look-up, keyed hashes for short codes, sealing of
//! values that must be read back later (a code that is resent), and RS256 signing keys.

pub mod rs256;

use aws_lc_rs::{
    aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN},
    digest, hmac,
};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use rand::{rngs::OsRng, Rng, RngCore};
use subtle::ConstantTimeEq;

use crate::error::Error;

/// A new API key (tyntec account or Passage app). The prefix makes keys recognisable to
/// secret scanners and keeps them from starting with `-`, which command lines would take for
/// an option.
pub fn new_api_key() -> String {
    format!("kh_{}", random_token())
}

/// 32 random bytes, base64url: API keys and other bearer secrets, shown once.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Bytes as base64url without padding, as WebAuthn and JOSE write them.
pub fn base64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// SHA-256 of a high-entropy secret: enough to store and look it up by.
pub fn sha256(secret: &str) -> Vec<u8> {
    sha256_bytes(secret.as_bytes())
}

pub fn sha256_bytes(data: &[u8]) -> Vec<u8> {
    digest::digest(&digest::SHA256, data).as_ref().to_vec()
}

pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// A code of `len` characters from the CSPRNG: digits, or digits and capital letters.
pub fn random_code(len: usize, alphanumeric: bool) -> String {
    let alphabet: &[u8] = if alphanumeric {
        b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    } else {
        b"0123456789"
    };
    random_chars(alphabet, len)
}

/// A UUID for a new row of a busy table (OTPs, passcodes, the outbox, refresh tokens):
/// time-ordered (v7), so inserts append to the key's index instead of scattering over it,
/// and still unguessable (74 random bits).
pub fn row_uuid() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// An id as the hosted Passage service made them: 24 letters and digits.
pub fn random_id() -> String {
    random_chars(
        b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
        24,
    )
}

fn random_chars(alphabet: &[u8], len: usize) -> String {
    let mut rng = OsRng;
    (0..len)
        .map(|_| char::from(alphabet[rng.gen_range(0..alphabet.len())]))
        .collect()
}

/// Keys derived from the server secret. Never stored in the database.
#[derive(Clone)]
pub struct ServerKeys {
    code_key: hmac::Key,
    seal_key: [u8; 32],
}

impl std::fmt::Debug for ServerKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerKeys(***)")
    }
}

impl ServerKeys {
    pub fn from_secret(secret: &str) -> Self {
        ServerKeys {
            code_key: hmac::Key::new(hmac::HMAC_SHA256, &derive(secret, b"keyhaven code hash v1")),
            seal_key: derive(secret, b"keyhaven seal v1"),
        }
    }

    /// HMAC-SHA256(key, owner ‖ code): short codes can be brute-forced from a plain digest,
    /// so the key lives outside the database. `owner` binds the code to one OTP.
    pub fn code_hash(&self, owner: &str, code: &str) -> Vec<u8> {
        let mut mac = hmac::Context::with_key(&self.code_key);
        mac.update(owner.as_bytes());
        mac.update(b"\0");
        mac.update(code.as_bytes());
        mac.sign().as_ref().to_vec()
    }

    /// Encrypts `plain` (nonce ‖ ciphertext ‖ tag), bound to `context` (e.g. the OTP id).
    pub fn seal(&self, context: &str, plain: impl AsRef<[u8]>) -> Result<Vec<u8>, Error> {
        let key = self.aead_key()?;
        let mut nonce = [0u8; NONCE_LEN];
        OsRng.fill_bytes(&mut nonce);
        let mut buf = plain.as_ref().to_vec();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(context.as_bytes()),
            &mut buf,
        )
        .map_err(|_| Error::Internal(anyhow::anyhow!("seal failed")))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        Ok(out)
    }

    /// Opens a sealed text.
    pub fn open(&self, context: &str, sealed: &[u8]) -> Result<String, Error> {
        String::from_utf8(self.open_bytes(context, sealed)?)
            .map_err(|_| Error::Internal(anyhow::anyhow!("sealed value is not text")))
    }

    pub fn open_bytes(&self, context: &str, sealed: &[u8]) -> Result<Vec<u8>, Error> {
        let fail = || {
            Error::Internal(anyhow::anyhow!(
                "sealed value does not open: wrong server secret?"
            ))
        };
        if sealed.len() < NONCE_LEN {
            return Err(fail());
        }
        let key = self.aead_key()?;
        let (nonce, rest) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| fail())?;
        let mut buf = rest.to_vec();
        let plain = key
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut buf)
            .map_err(|_| fail())?;
        Ok(plain.to_vec())
    }

    fn aead_key(&self) -> Result<LessSafeKey, Error> {
        let key = UnboundKey::new(&CHACHA20_POLY1305, &self.seal_key)
            .map_err(|_| Error::Internal(anyhow::anyhow!("bad seal key")))?;
        Ok(LessSafeKey::new(key))
    }
}

fn derive(secret: &str, label: &[u8]) -> [u8; 32] {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(hmac::sign(&key, label).as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_have_the_requested_shape() {
        let c = random_code(6, false);
        assert_eq!(c.len(), 6);
        assert!(c.chars().all(|ch| ch.is_ascii_digit()));
        let a = random_code(10, true);
        assert!(a
            .chars()
            .all(|ch| ch.is_ascii_digit() || ch.is_ascii_uppercase()));
    }

    #[test]
    fn code_hash_is_keyed_and_bound_to_owner() {
        let k = ServerKeys::from_secret("s1");
        assert_eq!(k.code_hash("a", "1234"), k.code_hash("a", "1234"));
        assert_ne!(k.code_hash("a", "1234"), k.code_hash("b", "1234"));
        assert_ne!(
            k.code_hash("a", "1234"),
            ServerKeys::from_secret("s2").code_hash("a", "1234")
        );
    }

    #[test]
    fn sealed_values_open_only_in_their_context() {
        let k = ServerKeys::from_secret("s");
        let sealed = k.seal("otp-1", "0427").unwrap();
        assert_eq!(k.open("otp-1", &sealed).unwrap(), "0427");
        assert!(k.open("otp-2", &sealed).is_err());
        assert!(ServerKeys::from_secret("t").open("otp-1", &sealed).is_err());
    }

    #[test]
    fn tokens_are_random_and_digests_stable() {
        assert_ne!(random_token(), random_token());
        assert_eq!(random_token().len(), 43);
        assert_eq!(sha256("x"), sha256("x"));
        assert_eq!(sha256("x").len(), 32);
    }
}
