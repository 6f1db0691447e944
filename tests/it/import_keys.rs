//! A passkey made outside Keyhaven, in the forms a Passage export holds it (COSE_Key and SPKI
//! PEM public keys), and the assertions its authenticator would make: import tests sign in with it.

use aws_lc_rs::{
    rand::SystemRandom,
    signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING},
};
use base64::{engine::general_purpose::STANDARD, Engine as _};
use keyhaven::crypto::{base64url, sha256_bytes};
use serde_cbor_2::Value as Cbor;
use serde_json::{json, Value};

/// The two algorithms Passage exports hold in practice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    P256,
    Ed25519,
}

/// The private key; the variant is the kind.
enum Private {
    P256(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// A credential created elsewhere: Keyhaven only ever sees its public key and its assertions.
pub struct ExternalKey {
    key: Private,
    cred_id: [u8; 16],
    user_handle: Vec<u8>,
    counter: u32,
    backed_up: bool,
}

/// DER of SubjectPublicKeyInfo for P-256 (RFC 5480): both lengths are fixed, so everything
/// before the point is a constant.
/// 30 59            SEQUENCE, 89 bytes
///   30 13          SEQUENCE (AlgorithmIdentifier), 19 bytes
///     06 07 ...    OID 1.2.840.10045.2.1 (id-ecPublicKey)
///     06 08 ...    OID 1.2.840.10045.3.1.7 (prime256v1)
///   03 42 00       BIT STRING, 66 bytes, no unused bits; then 04 || x || y (65 bytes)
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// DER of SubjectPublicKeyInfo for Ed25519 (RFC 8410), likewise fixed:
/// 30 2a            SEQUENCE, 42 bytes
///   30 05          SEQUENCE (AlgorithmIdentifier, no parameters), 5 bytes
///     06 03 2b 65 70   OID 1.3.101.112 (id-Ed25519)
///   03 21 00       BIT STRING, 33 bytes, no unused bits; then the 32-byte key
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

impl ExternalKey {
    /// A new credential for a user whose handle is `user_handle` (bytes; Keyhaven uses the
    /// user id's UTF-8 bytes).
    pub fn new(kind: KeyKind, user_handle: &[u8]) -> ExternalKey {
        let key = match kind {
            KeyKind::P256 => {
                Private::P256(EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING).unwrap())
            }
            KeyKind::Ed25519 => Private::Ed25519(Ed25519KeyPair::generate().unwrap()),
        };
        ExternalKey {
            key,
            cred_id: rand::random(),
            user_handle: user_handle.to_vec(),
            counter: 0,
            backed_up: false,
        }
    }

    /// base64url (no padding) of the credential id.
    pub fn cred_id(&self) -> String {
        base64url(&self.cred_id)
    }

    /// The P-256 point as x and y, or the Ed25519 key as x (and no y).
    fn coordinates(&self) -> (Vec<u8>, Option<Vec<u8>>) {
        match &self.key {
            Private::P256(pair) => {
                // Uncompressed SEC1 point: 0x04 || x || y.
                let point = pair.public_key().as_ref();
                assert_eq!((point.len(), point[0]), (65, 0x04));
                (point[1..33].to_vec(), Some(point[33..].to_vec()))
            }
            Private::Ed25519(pair) => (pair.public_key().as_ref().to_vec(), None),
        }
    }

    /// The public key as COSE_Key bytes (RFC 9053), base64url without padding.
    pub fn cose_public_key(&self) -> String {
        let int = |n: i128| Cbor::Integer(n);
        let (x, y) = self.coordinates();
        let mut map = std::collections::BTreeMap::new();
        match y {
            Some(y) => {
                map.insert(int(1), int(2)); // kty: EC2
                map.insert(int(3), int(-7)); // alg: ES256
                map.insert(int(-1), int(1)); // crv: P-256
                map.insert(int(-3), Cbor::Bytes(y));
            }
            None => {
                map.insert(int(1), int(1)); // kty: OKP
                map.insert(int(3), int(-8)); // alg: EdDSA
                map.insert(int(-1), int(6)); // crv: Ed25519
            }
        }
        map.insert(int(-2), Cbor::Bytes(x));
        base64url(&serde_cbor_2::to_vec(&Cbor::Map(map)).unwrap())
    }

    /// The SubjectPublicKeyInfo DER: a constant prefix, then the key bytes.
    fn spki_der(&self) -> Vec<u8> {
        let (prefix, key): (&[u8], &[u8]) = match &self.key {
            Private::P256(pair) => (&P256_SPKI_PREFIX, pair.public_key().as_ref()),
            Private::Ed25519(pair) => (&ED25519_SPKI_PREFIX, pair.public_key().as_ref()),
        };
        [prefix, key].concat()
    }

    /// The public key as a PEM "PUBLIC KEY" (SPKI), base64 in 64-character lines.
    pub fn spki_pem(&self) -> String {
        let b64 = STANDARD.encode(self.spki_der());
        let mut pem = String::from("-----BEGIN PUBLIC KEY-----\n");
        for line in b64.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(line).unwrap());
            pem.push('\n');
        }
        pem.push_str("-----END PUBLIC KEY-----\n");
        pem
    }

    /// The counter the next assertion starts from (it signs `n + 1`).
    pub fn set_counter(&mut self, n: u32) {
        self.counter = n;
    }

    /// Marks the credential as synced (flags BE and BS), as platform passkeys are.
    pub fn set_backed_up(&mut self, backed_up: bool) {
        self.backed_up = backed_up;
    }

    /// `navigator.credentials.get()` as a browser answers it, for the server's request options
    /// (`{"publicKey": {"challenge", "rpId", ...}}`) on a page at `origin`.
    pub fn assert(&mut self, options: &Value, origin: &str) -> Value {
        let public_key = &options["publicKey"];
        let rp_id = public_key["rpId"].as_str().unwrap();
        let challenge = public_key["challenge"].as_str().unwrap();

        // User present and verified; backup eligible and backed up when synced.
        let flags = if self.backed_up { 0x1d } else { 0x05 };
        self.counter = self.counter.wrapping_add(1);
        let mut auth_data = sha256_bytes(rp_id.as_bytes());
        auth_data.push(flags);
        auth_data.extend_from_slice(&self.counter.to_be_bytes());

        let client_data = serde_json::to_vec(&json!({
            "type": "webauthn.get",
            "challenge": challenge,
            "origin": origin,
            "crossOrigin": false,
        }))
        .unwrap();

        let signed = [auth_data.as_slice(), &sha256_bytes(&client_data)].concat();
        let signature = match &self.key {
            Private::P256(pair) => pair
                .sign(&SystemRandom::new(), &signed)
                .unwrap()
                .as_ref()
                .to_vec(),
            Private::Ed25519(pair) => pair.sign(&signed).as_ref().to_vec(),
        };

        json!({
            "id": self.cred_id(),
            "rawId": self.cred_id(),
            "type": "public-key",
            "response": {
                "authenticatorData": base64url(&auth_data),
                "clientDataJSON": base64url(&client_data),
                "signature": base64url(&signature),
                "userHandle": base64url(&self.user_handle),
            },
            "clientExtensionResults": {},
            "authenticatorAttachment": "platform",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::{
        encoding::{AsDer, PublicKeyX509Der},
        signature::{UnparsedPublicKey, VerificationAlgorithm, ECDSA_P256_SHA256_ASN1, ED25519},
    };
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use webauthn_rs_core::proto::COSEKey;

    const KINDS: [KeyKind; 2] = [KeyKind::P256, KeyKind::Ed25519];

    fn options() -> Value {
        json!({"publicKey": {
            "challenge": "c2lnbi1pbi1jaGFsbGVuZ2U",
            "rpId": "shop.example",
            "allowCredentials": [],
            "userVerification": "preferred",
        }})
    }

    fn field(assertion: &Value, name: &str) -> Vec<u8> {
        URL_SAFE_NO_PAD
            .decode(assertion["response"][name].as_str().unwrap())
            .unwrap()
    }

    /// What the signature covers: authenticatorData || SHA-256(clientDataJSON).
    fn signed_data(assertion: &Value) -> Vec<u8> {
        let client_hash = sha256_bytes(&field(assertion, "clientDataJSON"));
        [field(assertion, "authenticatorData"), client_hash].concat()
    }

    #[test]
    fn cose_key_verifies_its_assertions_with_webauthn_rs() {
        for kind in KINDS {
            let mut key = ExternalKey::new(kind, b"user-1");
            let cbor: Cbor =
                serde_cbor_2::from_slice(&URL_SAFE_NO_PAD.decode(key.cose_public_key()).unwrap())
                    .unwrap();
            let cose = COSEKey::try_from(&cbor).unwrap();

            let assertion = key.assert(&options(), "https://shop.example");
            let (sig, mut data) = (field(&assertion, "signature"), signed_data(&assertion));
            assert!(cose.verify_signature(&sig, &data).unwrap(), "{kind:?}");

            data[32] ^= 0x04; // clear UV: a changed flags byte must not verify
            assert!(!matches!(cose.verify_signature(&sig, &data), Ok(true)));
        }
    }

    #[test]
    fn spki_pem_matches_aws_lc_and_verifies() {
        for kind in KINDS {
            let mut key = ExternalKey::new(kind, b"user-1");
            let pem = key.spki_pem();
            let lines: Vec<&str> = pem.lines().collect();
            assert_eq!(lines[0], "-----BEGIN PUBLIC KEY-----");
            assert_eq!(*lines.last().unwrap(), "-----END PUBLIC KEY-----");
            let body = &lines[1..lines.len() - 1];
            assert!(body.iter().all(|l| l.len() <= 64));
            let der = STANDARD.decode(body.concat()).unwrap();

            // The hand-built DER is byte for byte what AWS-LC itself encodes.
            let (expected, alg): (PublicKeyX509Der, &dyn VerificationAlgorithm) = match &key.key {
                Private::P256(p) => (p.public_key().as_der().unwrap(), &ECDSA_P256_SHA256_ASN1),
                Private::Ed25519(p) => (p.public_key().as_der().unwrap(), &ED25519),
            };
            assert_eq!(der, expected.as_ref(), "{kind:?}");
            assert_eq!(der.len(), if kind == KeyKind::P256 { 91 } else { 44 });

            // And AWS-LC parses it as SPKI and verifies an assertion with it.
            let assertion = key.assert(&options(), "https://shop.example");
            UnparsedPublicKey::new(alg, &der)
                .verify(&signed_data(&assertion), &field(&assertion, "signature"))
                .unwrap();
        }
    }

    #[test]
    fn assertion_carries_what_the_browser_would() {
        let mut key = ExternalKey::new(KeyKind::Ed25519, b"user-1");
        key.set_counter(41);
        let first = key.assert(&options(), "https://shop.example");
        let auth_data = field(&first, "authenticatorData");
        assert_eq!(auth_data.len(), 37);
        assert_eq!(auth_data[..32], sha256_bytes(b"shop.example")[..]);
        assert_eq!(auth_data[32], 0x05);
        assert_eq!(auth_data[33..], 42u32.to_be_bytes());
        assert_eq!(first["id"], key.cred_id());
        assert_eq!(first["rawId"], key.cred_id());
        assert_eq!(URL_SAFE_NO_PAD.decode(key.cred_id()).unwrap().len(), 16);
        assert_eq!(field(&first, "userHandle"), b"user-1");

        let client: Value = serde_json::from_slice(&field(&first, "clientDataJSON")).unwrap();
        assert_eq!(
            client,
            json!({"type": "webauthn.get", "challenge": "c2lnbi1pbi1jaGFsbGVuZ2U",
                   "origin": "https://shop.example", "crossOrigin": false})
        );

        key.set_backed_up(true);
        let second = key.assert(&options(), "https://shop.example");
        let auth_data = field(&second, "authenticatorData");
        assert_eq!(auth_data[32], 0x1d);
        assert_eq!(auth_data[33..], 43u32.to_be_bytes());
    }
}
