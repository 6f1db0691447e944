//! RS256 signing keys (RSA-2048, aws-lc-rs): generation, JWTs, and the public forms a JWKS
//! and the App object publish.

use aws_lc_rs::{
    encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der},
    rand::SystemRandom,
    rsa::KeySize,
    signature::{
        KeyPair, RsaKeyPair, RsaPublicKeyComponents, RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256,
    },
};
use base64::{
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
    Engine,
};
use serde_json::{json, Value};

use crate::error::Error;

fn failed(what: &str) -> Error {
    Error::Internal(anyhow::anyhow!("RSA: {what}"))
}

/// A private signing key with its key id.
pub struct SigningKey {
    kid: String,
    pair: RsaKeyPair,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", self.kid)
    }
}

impl SigningKey {
    /// A fresh RSA-2048 key and its PKCS#8 encoding (to be sealed before it is stored).
    pub fn generate() -> Result<(SigningKey, Vec<u8>), Error> {
        let pair = RsaKeyPair::generate(KeySize::Rsa2048).map_err(|_| failed("generate"))?;
        let der: Pkcs8V1Der<'static> = pair.as_der().map_err(|_| failed("encode"))?;
        let pkcs8 = der.as_ref().to_vec();
        let kid = key_id(&pair)?;
        Ok((SigningKey { kid, pair }, pkcs8))
    }

    pub fn from_pkcs8(kid: &str, pkcs8: &[u8]) -> Result<SigningKey, Error> {
        let pair = RsaKeyPair::from_pkcs8(pkcs8).map_err(|_| failed("decode"))?;
        Ok(SigningKey {
            kid: kid.to_string(),
            pair,
        })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// A compact JWT with header `{"alg":"RS256","typ":"JWT","kid":...}`.
    pub fn sign_jwt(&self, claims: &Value) -> Result<String, Error> {
        let header = json!({"alg": "RS256", "typ": "JWT", "kid": self.kid});
        let mut token = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut signature = vec![0u8; self.pair.public_modulus_len()];
        self.pair
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                token.as_bytes(),
                &mut signature,
            )
            .map_err(|_| failed("sign"))?;
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(signature));
        Ok(token)
    }

    /// The public key as a JWK (`kty`, `use`, `alg`, `kid`, `n`, `e`).
    pub fn jwk(&self) -> Value {
        let public = self.pair.public_key();
        json!({
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": self.kid,
            "n": URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
            "e": URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
        })
    }

    /// The public key as a PEM `PUBLIC KEY` (SPKI), as the App object's `rsa_public_key`.
    pub fn public_pem(&self) -> Result<String, Error> {
        let der: PublicKeyX509Der<'static> = self
            .pair
            .public_key()
            .as_der()
            .map_err(|_| failed("encode public key"))?;
        let b64 = STANDARD.encode(der.as_ref());
        let mut pem = String::from("-----BEGIN PUBLIC KEY-----\n");
        for line in b64.as_bytes().chunks(64) {
            pem.push_str(&String::from_utf8_lossy(line));
            pem.push('\n');
        }
        pem.push_str("-----END PUBLIC KEY-----\n");
        Ok(pem)
    }
}

/// A published public key, as it checks RS256 signatures.
#[derive(Debug)]
pub struct VerifyingKey {
    kid: String,
    n: Vec<u8>,
    e: Vec<u8>,
}

impl VerifyingKey {
    /// From a JWK as [`SigningKey::jwk`] writes it.
    pub fn from_jwk(jwk: &Value) -> Result<VerifyingKey, Error> {
        let part = |name: &str| {
            jwk[name]
                .as_str()
                .and_then(|v| URL_SAFE_NO_PAD.decode(v).ok())
                .ok_or_else(|| failed("malformed JWK"))
        };
        Ok(VerifyingKey {
            kid: jwk["kid"].as_str().unwrap_or_default().to_string(),
            n: part("n")?,
            e: part("e")?,
        })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The claims of a compact JWT signed by this key with `alg` exactly `RS256`; `None` for
    /// anything else. (Expiry and audience are the caller's to check.)
    pub fn verify_jwt(&self, token: &str) -> Option<Value> {
        let (signed, signature) = token.rsplit_once('.')?;
        let (header, claims) = signed.split_once('.')?;
        let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
        // A `crit` header names extensions the verifier must understand: this one knows none.
        if header["alg"] != "RS256"
            || header["kid"] != self.kid.as_str()
            || !header["crit"].is_null()
        {
            return None;
        }
        let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
        RsaPublicKeyComponents {
            n: &self.n,
            e: &self.e,
        }
        .verify(&RSA_PKCS1_2048_8192_SHA256, signed.as_bytes(), &signature)
        .ok()?;
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).ok()?).ok()
    }
}

/// The `kid` a compact JWT's header names, if it parses.
pub fn jwt_kid(token: &str) -> Option<String> {
    let header = token.split('.').next()?;
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
    header["kid"].as_str().map(str::to_string)
}

/// The key id: a digest of the public key, so every node names a key alike.
fn key_id(pair: &RsaKeyPair) -> Result<String, Error> {
    let der: PublicKeyX509Der<'static> = pair
        .public_key()
        .as_der()
        .map_err(|_| failed("encode public key"))?;
    Ok(URL_SAFE_NO_PAD.encode(&crate::crypto::sha256_bytes(der.as_ref())[..16]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::signature::UnparsedPublicKey;

    #[test]
    fn signs_tokens_that_the_public_key_verifies() {
        let (key, pkcs8) = SigningKey::generate().unwrap();
        let again = SigningKey::from_pkcs8(key.kid(), &pkcs8).unwrap();
        let token = again.sign_jwt(&json!({"sub": "u1"})).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(
            header,
            json!({"alg": "RS256", "typ": "JWT", "kid": key.kid()})
        );
        let public = key.pair.public_key().as_ref().to_vec();
        let signed = format!("{}.{}", parts[0], parts[1]);
        UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, public)
            .verify(
                signed.as_bytes(),
                &URL_SAFE_NO_PAD.decode(parts[2]).unwrap(),
            )
            .unwrap();
        let jwk = key.jwk();
        assert_eq!(jwk["e"], "AQAB");
        assert_eq!(
            URL_SAFE_NO_PAD
                .decode(jwk["n"].as_str().unwrap())
                .unwrap()
                .len(),
            256
        );
        let verifying = VerifyingKey::from_jwk(&jwk).unwrap();
        assert_eq!(jwt_kid(&token).as_deref(), Some(key.kid()));
        assert_eq!(verifying.verify_jwt(&token).unwrap(), json!({"sub": "u1"}));
        let other_claims = URL_SAFE_NO_PAD.encode(json!({"sub": "u2"}).to_string());
        let forged = format!("{}.{other_claims}.{}", parts[0], parts[2]);
        assert!(verifying.verify_jwt(&forged).is_none());
        assert!(verifying
            .verify_jwt(&format!("{}.{}.", parts[0], parts[1]))
            .is_none());
        assert!(key
            .public_pem()
            .unwrap()
            .starts_with("-----BEGIN PUBLIC KEY-----\nMIIBIjAN"));
    }

    #[test]
    fn tokens_with_critical_extensions_are_refused() {
        let (key, _) = SigningKey::generate().unwrap();
        let header =
            json!({"alg": "RS256", "typ": "JWT", "kid": key.kid(), "crit": ["exp2"], "exp2": 1});
        let signed = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(json!({"sub": "u1"}).to_string())
        );
        let mut signature = vec![0u8; key.pair.public_modulus_len()];
        key.pair
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                signed.as_bytes(),
                &mut signature,
            )
            .unwrap();
        let token = format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature));
        let verifying = VerifyingKey::from_jwk(&key.jwk()).unwrap();
        assert!(verifying.verify_jwt(&token).is_none());
        // The same token without `crit` verifies: only the header made the difference.
        let plain = key.sign_jwt(&json!({"sub": "u1"})).unwrap();
        assert!(verifying.verify_jwt(&plain).is_some());
    }
}
