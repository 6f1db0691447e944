//! Passkey public keys as exports hold them: COSE_Key bytes (base64url) or a PEM SPKI, for
//! ES256 (P-256), RS256 and EdDSA (Ed25519) — read into webauthn-rs' key, and written back
//! as COSE_Key.

use std::collections::BTreeMap;

use base64::{
    engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD},
    Engine as _,
};
use openssl::{
    bn::BigNumContext,
    ec::EcGroup,
    nid::Nid,
    pkey::{Id, PKey},
};
use serde_cbor_2::Value as Cbor;
use webauthn_rs_core::proto::{
    COSEAlgorithm, COSEEC2Key, COSEKey, COSEKeyType, COSEOKPKey, COSERSAKey, ECDSACurve, EDDSACurve,
};

/// Bytes of base64url text, padded or not.
pub fn base64url_bytes(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .or_else(|_| URL_SAFE.decode(text))
        .ok()
}

/// The key in `text`: a PEM `PUBLIC KEY`, else base64url COSE_Key bytes.
pub fn parse(text: &str) -> Result<COSEKey, String> {
    let key = if text.trim_start().starts_with("-----BEGIN") {
        from_spki_pem(text)?
    } else {
        let bytes = base64url_bytes(text).ok_or("public_key is neither PEM nor base64url")?;
        let cbor: Cbor = serde_cbor_2::from_slice(&bytes)
            .map_err(|_| "public_key is not a COSE key (CBOR)".to_string())?;
        COSEKey::try_from(&cbor)
            .map_err(|e| format!("public_key is not a usable COSE key: {e:?}"))?
    };
    // A point off the curve or a malformed modulus is refused here, not at the first login.
    key.get_openssl_pkey()
        .map_err(|_| "public_key is not a valid key".to_string())?;
    Ok(key)
}

fn from_spki_pem(pem: &str) -> Result<COSEKey, String> {
    let pkey = PKey::public_key_from_pem(pem.trim().as_bytes())
        .map_err(|_| "public_key is not a PEM SubjectPublicKeyInfo".to_string())?;
    let bad = |what: &str| format!("public_key: {what}");
    match pkey.id() {
        Id::EC => {
            let ec = pkey.ec_key().map_err(|_| bad("unreadable EC key"))?;
            if ec.group().curve_name() != Some(Nid::X9_62_PRIME256V1) {
                return Err(bad("only P-256 EC keys are supported"));
            }
            let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).map_err(|_| bad("EC"))?;
            let mut ctx = BigNumContext::new().map_err(|_| bad("EC"))?;
            let (mut x, mut y) = (
                openssl::bn::BigNum::new().map_err(|_| bad("EC"))?,
                openssl::bn::BigNum::new().map_err(|_| bad("EC"))?,
            );
            ec.public_key()
                .affine_coordinates(&group, &mut x, &mut y, &mut ctx)
                .map_err(|_| bad("EC point"))?;
            let coordinate =
                |n: &openssl::bn::BigNum| n.to_vec_padded(32).map_err(|_| bad("EC point"));
            Ok(COSEKey {
                type_: COSEAlgorithm::ES256,
                key: COSEKeyType::EC_EC2(COSEEC2Key {
                    curve: ECDSACurve::SECP256R1,
                    x: coordinate(&x)?.into(),
                    y: coordinate(&y)?.into(),
                }),
            })
        }
        Id::RSA => {
            let rsa = pkey.rsa().map_err(|_| bad("unreadable RSA key"))?;
            let e = rsa.e().to_vec_padded(3).map_err(|_| bad("RSA exponent"))?;
            let e: [u8; 3] = e.try_into().map_err(|_| bad("RSA exponent"))?;
            Ok(COSEKey {
                type_: COSEAlgorithm::RS256,
                key: COSEKeyType::RSA(COSERSAKey {
                    n: rsa.n().to_vec().into(),
                    e,
                }),
            })
        }
        Id::ED25519 => {
            let x = pkey.raw_public_key().map_err(|_| bad("Ed25519"))?;
            Ok(COSEKey {
                type_: COSEAlgorithm::EDDSA,
                key: COSEKeyType::EC_OKP(COSEOKPKey {
                    curve: EDDSACurve::ED25519,
                    x: x.into(),
                }),
            })
        }
        _ => Err(bad("only P-256, RSA and Ed25519 keys are supported")),
    }
}

/// The key as base64url COSE_Key bytes (RFC 9053 labels).
pub fn to_cose(key: &COSEKey) -> Result<String, String> {
    let int = |n: i128| Cbor::Integer(n);
    let mut map = BTreeMap::new();
    map.insert(int(3), int(key.type_ as i128));
    match &key.key {
        COSEKeyType::EC_EC2(k) => {
            map.insert(int(1), int(2));
            map.insert(int(-1), int(k.curve.clone() as i128));
            map.insert(int(-2), Cbor::Bytes(k.x.to_vec()));
            map.insert(int(-3), Cbor::Bytes(k.y.to_vec()));
        }
        COSEKeyType::EC_OKP(k) => {
            map.insert(int(1), int(1));
            map.insert(int(-1), int(k.curve.clone() as i128));
            map.insert(int(-2), Cbor::Bytes(k.x.to_vec()));
        }
        COSEKeyType::RSA(k) => {
            map.insert(int(1), int(3));
            map.insert(int(-1), Cbor::Bytes(k.n.to_vec()));
            map.insert(int(-2), Cbor::Bytes(k.e.to_vec()));
        }
    }
    let bytes = serde_cbor_2::to_vec(&Cbor::Map(map)).map_err(|e| e.to_string())?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn keys_read_from_pem_write_as_cose_and_read_back_the_same() {
        let ec =
            openssl::ec::EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap())
                .unwrap();
        let ec = PKey::from_ec_key(ec).unwrap();
        let rsa = PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
        let ed = PKey::generate_ed25519().unwrap();
        for (pkey, alg) in [
            (ec, COSEAlgorithm::ES256),
            (rsa, COSEAlgorithm::RS256),
            (ed, COSEAlgorithm::EDDSA),
        ] {
            let pem = String::from_utf8(pkey.public_key_to_pem().unwrap()).unwrap();
            let key = parse(&pem).unwrap();
            assert_eq!(key.type_, alg);
            let cose = to_cose(&key).unwrap();
            assert_eq!(parse(&cose).unwrap(), key);
            // Padded base64url reads the same.
            let padded = URL_SAFE.encode(base64url_bytes(&cose).unwrap());
            assert_eq!(parse(&padded).unwrap(), key);
        }
    }

    #[test]
    fn what_is_not_a_key_is_refused() {
        let p384 = openssl::ec::EcKey::generate(&EcGroup::from_curve_name(Nid::SECP384R1).unwrap())
            .unwrap();
        let p384 = PKey::from_ec_key(p384).unwrap();
        let pem = String::from_utf8(p384.public_key_to_pem().unwrap()).unwrap();
        let ec =
            openssl::ec::EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap())
                .unwrap();
        let good = to_cose(
            &parse(
                &String::from_utf8(PKey::from_ec_key(ec).unwrap().public_key_to_pem().unwrap())
                    .unwrap(),
            )
            .unwrap(),
        )
        .unwrap();
        for bad in [
            pem.as_str(),
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----",
            "not base64!",
            &good[..good.len() / 2],
            "oWFhYWI",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
