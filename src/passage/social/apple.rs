//! Sign in with Apple's client secret: not a fixed string but a short-lived ES256 JWT that
//! the app's private key signs (issuer = team id, subject = client id).

use aws_lc_rs::{
    rand::SystemRandom,
    signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING},
};
use base64::{
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
    Engine as _,
};
use serde_json::json;

use super::connections::Provider;

/// How long a minted client secret is valid; one is minted per token request.
const SECRET_LIFETIME_S: i64 = 300;

/// A client secret for a token request at `now` (epoch seconds), signed with the PEM key.
pub fn client_secret(
    provider: &Provider,
    private_key_pem: &str,
    now: i64,
) -> Result<String, String> {
    let der: String = private_key_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .map(str::trim)
        .collect();
    let der = STANDARD
        .decode(der)
        .map_err(|_| "is not a PEM private key".to_string())?;
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der)
        .map_err(|_| "is not a PKCS#8 P-256 private key".to_string())?;
    let header = json!({"alg": "ES256", "kid": provider.apple_key_id});
    let claims = json!({
        "iss": provider.apple_team_id,
        "iat": now,
        "exp": now + SECRET_LIFETIME_S,
        "aud": "https://appleid.apple.com",
        "sub": provider.client_id,
    });
    let mut token = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = pair
        .sign(&SystemRandom::new(), token.as_bytes())
        .map_err(|_| "could not sign".to_string())?;
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(signature.as_ref()));
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::signature::{KeyPair as _, UnparsedPublicKey, ECDSA_P256_SHA256_FIXED};

    #[test]
    fn the_secret_is_an_es256_jwt_the_public_key_verifies() {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map(|d| d.as_ref().to_vec())
            .unwrap_or_default();
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            STANDARD.encode(&pkcs8)
        );
        let provider = Provider {
            connection_type: "apple".into(),
            client_id: "com.example.web".into(),
            issuer: "https://appleid.apple.com".into(),
            authorize_url: String::new(),
            token_url: String::new(),
            userinfo_url: String::new(),
            apple_team_id: "TEAM123456".into(),
            apple_key_id: "KEY1234567".into(),
        };
        let token = client_secret(&provider, &pem, 1_700_000_000).unwrap_or_default();
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let decode = |s: &str| URL_SAFE_NO_PAD.decode(s).unwrap_or_default();
        let header: serde_json::Value =
            serde_json::from_slice(&decode(parts[0])).unwrap_or_default();
        let claims: serde_json::Value =
            serde_json::from_slice(&decode(parts[1])).unwrap_or_default();
        assert_eq!(header["alg"], "ES256");
        assert_eq!(header["kid"], "KEY1234567");
        assert_eq!(claims["iss"], "TEAM123456");
        assert_eq!(claims["sub"], "com.example.web");
        assert_eq!(claims["exp"], 1_700_000_300);

        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8);
        let public = pair
            .map(|p| p.public_key().as_ref().to_vec())
            .unwrap_or_default();
        let signed = format!("{}.{}", parts[0], parts[1]);
        let verified = UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &public)
            .verify(signed.as_bytes(), &decode(parts[2]));
        assert!(verified.is_ok());

        assert!(client_secret(&provider, "not a key", 0).is_err());
    }
}
