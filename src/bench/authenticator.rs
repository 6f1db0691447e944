//! A software passkey authenticator and its client, as a browser with a platform
//! authenticator would act: it answers a server's WebAuthn options (`{"publicKey": ...}`)
//! with the credential JSON a browser sends (camelCase, base64url without padding). It
//! always performs user presence and verification, and keeps its credentials in memory.
//! The load command and the integration tests log in with it.

use anyhow::{anyhow, Context as _};
use std::collections::HashMap;

use passkey_authenticator::{
    Authenticator, CredentialStore, DiscoverabilitySupport, StoreInfo, UiHint, UserCheck,
    UserValidationMethod,
};
use passkey_client::{Client, DefaultClientData};
use passkey_crypto::AvailableBackend;
use passkey_types::{
    ctap2::{
        make_credential::{Options, PublicKeyCredentialRpEntity, PublicKeyCredentialUserEntity},
        Aaguid, Ctap2Error, StatusCode,
    },
    webauthn::{
        CredentialCreationOptions, CredentialRequestOptions, PublicKeyCredentialDescriptor,
    },
    Passkey,
};
use serde_json::Value;
use url::Url;

/// The AAGUID this authenticator reports (the model an RP sees).
pub const AAGUID: [u8; 16] = *b"keyhaven-softkey";

/// A user who always confirms, with verification (a fingerprint, a PIN).
struct VerifiedUser;

#[async_trait::async_trait]
impl UserValidationMethod for VerifiedUser {
    type PasskeyItem = Passkey;

    async fn check_user<'a>(
        &self,
        _hint: UiHint<'a, Passkey>,
        _presence: bool,
        _verification: bool,
    ) -> Result<UserCheck, Ctap2Error> {
        Ok(UserCheck {
            presence: true,
            verification: true,
        })
    }

    fn is_presence_enabled(&self) -> bool {
        true
    }

    fn is_verification_enabled(&self) -> Option<bool> {
        Some(true)
    }
}

/// The authenticator's credentials by id. Unlike a plain map it finds discoverable
/// credentials by RP when the server names none (login without identifier).
#[derive(Default)]
struct Keyring(HashMap<Vec<u8>, Passkey>);

#[async_trait::async_trait]
impl CredentialStore for Keyring {
    type PasskeyItem = Passkey;

    async fn find_credentials(
        &self,
        allowed: Option<&[PublicKeyCredentialDescriptor]>,
        rp_id: &str,
        _user_handle: Option<&[u8]>,
    ) -> Result<Vec<Passkey>, StatusCode> {
        let found: Vec<Passkey> = match allowed.filter(|ids| !ids.is_empty()) {
            Some(ids) => ids
                .iter()
                .filter_map(|d| self.0.get(&*d.id))
                .cloned()
                .collect(),
            None => self
                .0
                .values()
                .filter(|k| k.rp_id == rp_id)
                .cloned()
                .collect(),
        };
        if found.is_empty() {
            Err(Ctap2Error::NoCredentials.into())
        } else {
            Ok(found)
        }
    }

    async fn save_credential(
        &mut self,
        passkey: Passkey,
        _user: PublicKeyCredentialUserEntity,
        _rp: PublicKeyCredentialRpEntity,
        _options: Options,
    ) -> Result<(), StatusCode> {
        self.0.insert(passkey.credential_id.to_vec(), passkey);
        Ok(())
    }

    async fn update_credential(&mut self, passkey: &Passkey) -> Result<(), StatusCode> {
        self.0
            .insert(passkey.credential_id.to_vec(), passkey.clone());
        Ok(())
    }

    async fn get_info(&self) -> StoreInfo {
        StoreInfo {
            discoverability: DiscoverabilitySupport::ForcedDiscoverable,
        }
    }
}

type SoftClient =
    Client<Keyring, VerifiedUser, AvailableBackend, public_suffix::PublicSuffixList, ()>;

/// A browser with a software authenticator, on one page origin.
pub struct SoftAuthenticator {
    client: SoftClient,
    origin: Url,
}

impl SoftAuthenticator {
    /// An authenticator on the page `origin` (e.g. `http://localhost:3000`) whose new
    /// credentials keep a sign counter, as security keys do.
    pub fn new(origin: &str) -> anyhow::Result<SoftAuthenticator> {
        let origin = Url::parse(origin).with_context(|| format!("origin {origin}"))?;
        let mut authenticator = Authenticator::new(
            Aaguid(AAGUID),
            Keyring::default(),
            VerifiedUser,
            AvailableBackend,
        );
        authenticator.set_make_credentials_with_signature_counter(true);
        let client = Client::new(authenticator).allows_insecure_localhost(true);
        Ok(SoftAuthenticator { client, origin })
    }

    /// The page origin the client data names from now on (another site, for tests).
    pub fn set_origin(&mut self, origin: &str) -> anyhow::Result<()> {
        self.origin = Url::parse(origin).with_context(|| format!("origin {origin}"))?;
        Ok(())
    }

    /// `navigator.credentials.create(options)`: a new credential, as the browser's JSON.
    pub async fn register(&mut self, options: &Value) -> anyhow::Result<Value> {
        let options: CredentialCreationOptions =
            serde_json::from_value(options.clone()).context("creation options")?;
        let created = self
            .client
            .register(&self.origin, options, DefaultClientData)
            .await
            .map_err(|e| anyhow!("registration refused: {e:?}"))?;
        Ok(serde_json::to_value(&created)?)
    }

    /// `navigator.credentials.get(options)`: an assertion, as the browser's JSON. An empty
    /// `allowCredentials` picks a discoverable credential of the RP.
    pub async fn login(&mut self, options: &Value) -> anyhow::Result<Value> {
        let options: CredentialRequestOptions =
            serde_json::from_value(options.clone()).context("request options")?;
        let assertion = self
            .client
            .authenticate(&self.origin, options, DefaultClientData)
            .await
            .map_err(|e| anyhow!("login refused: {e:?}"))?;
        Ok(serde_json::to_value(&assertion)?)
    }

    /// Sets the sign counter of every stored credential, as a cloned authenticator whose
    /// copy lags behind would report it.
    pub fn set_counter(&mut self, counter: u32) {
        let store = self.client.authenticator_mut().store_mut();
        for passkey in store.0.values_mut() {
            passkey.counter = Some(counter);
        }
    }
}
