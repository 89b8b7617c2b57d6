//! Signing an audit's manifest with an AWS KMS key (`--sign-with-kms`),
//! and reading a key's public half for `verify --kms-key`.
//!
//! kms:Sign is the one call here that is not a read; it runs only when a
//! user names a key, and changes nothing in the account. The key must be
//! asymmetric, `ECC_NIST_P256` for `SIGN_VERIFY`. It signs (ECDSA_SHA_256,
//! a RAW message) one line naming the manifest's sha256
//! ([`crate::evidence::signed_statement`]): a plain DER ECDSA signature
//! that `openssl dgst -sha256 -verify` checks as well as `amiaudit verify`
//! does, with no AWS access.

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{KeySpec, KeyUsageType, MessageType, SigningAlgorithmSpec};

use super::sdk_error_text;
use crate::aws::Connection;
use crate::error::{Error, Result};
use crate::evidence::Signing;

/// The only algorithm amiaudit signs and verifies with.
pub const ALGORITHM: &str = "ECDSA_SHA_256";

/// A KMS key ready to sign, with its public half.
pub struct Signer {
    client: aws_sdk_kms::Client,
    signing: Signing,
}

impl Signer {
    /// Reads the key's public half (kms:GetPublicKey) and checks it can
    /// sign as amiaudit signs, before any work is done.
    pub async fn connect(connection: &Connection, key_id: &str) -> Result<Signer> {
        let client = client(connection, key_id).await;
        let signing = public_key(&client, key_id, "--sign-with-kms").await?;
        Ok(Signer { client, signing })
    }

    /// What the manifest records of the key.
    pub fn signing(&self) -> &Signing {
        &self.signing
    }

    /// The DER signature of `manifest` (its bytes): kms:Sign of its
    /// statement, checked against the public key before it is returned.
    pub async fn sign(&self, manifest: &[u8]) -> Result<Vec<u8>> {
        let statement = crate::evidence::signed_statement(manifest);
        let signed = self
            .client
            .sign()
            .key_id(&self.signing.kms_key_arn)
            .message(Blob::new(statement.into_bytes()))
            .message_type(MessageType::Raw)
            .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
            .send()
            .await
            .map_err(|e| {
                Error::input(format!(
                    "--sign-with-kms {}: kms:Sign failed ({}); the audit was not written",
                    self.signing.kms_key_arn,
                    sdk_error_text(&e)
                ))
            })?;
        let signature = signed
            .signature()
            .map(|b| b.as_ref().to_vec())
            .unwrap_or_default();
        if !crate::evidence::signature_verifies(&self.signing, manifest, &signature)? {
            return Err(Error::input(format!(
                "--sign-with-kms {}: KMS returned a signature its public key does not verify; the audit was not written",
                self.signing.kms_key_arn
            )));
        }
        Ok(signature)
    }
}

/// The public half of `key_id` as the manifest would record it, for
/// `verify --kms-key`.
pub async fn expected_key(connection: &Connection, key_id: &str) -> Result<Signing> {
    let client = client(connection, key_id).await;
    public_key(&client, key_id, "--kms-key").await
}

/// A KMS client in the key's region: the one its ARN names, or the
/// connection's home region for a key id or alias.
async fn client(connection: &Connection, key_id: &str) -> aws_sdk_kms::Client {
    let base = crate::aws::base_config(connection).await;
    let mut config = aws_sdk_kms::config::Builder::from(&base);
    if let Some(region) = key_id
        .strip_prefix("arn:")
        .and_then(|arn| arn.split(':').nth(2))
        .filter(|r| !r.is_empty())
    {
        config = config.region(aws_config::Region::new(region.to_string()));
    }
    aws_sdk_kms::Client::from_conf(config.build())
}

async fn public_key(client: &aws_sdk_kms::Client, key_id: &str, flag: &str) -> Result<Signing> {
    let shown = key_id.escape_debug();
    let key = client
        .get_public_key()
        .key_id(key_id)
        .send()
        .await
        .map_err(|e| {
            Error::input(format!(
                "{flag} {shown}: cannot read the key's public key (kms:GetPublicKey: {}); check the key id and the credentials",
                sdk_error_text(&e)
            ))
        })?;
    let usable = key.key_spec() == Some(&KeySpec::EccNistP256)
        && key.key_usage() == Some(&KeyUsageType::SignVerify)
        && key
            .signing_algorithms()
            .contains(&SigningAlgorithmSpec::EcdsaSha256);
    if !usable {
        return Err(Error::input(format!(
            "{flag} {shown}: the key is {} for {}; amiaudit signs with an ECC_NIST_P256 key for SIGN_VERIFY (ECDSA_SHA_256)",
            key.key_spec().map_or("of no stated spec", |s| s.as_str()),
            key.key_usage().map_or("no stated usage", |u| u.as_str()),
        )));
    }
    let der = key.public_key().map(|b| b.as_ref()).unwrap_or_default();
    Ok(Signing {
        kms_key_arn: key.key_id().unwrap_or(key_id).to_string(),
        algorithm: ALGORITHM.to_string(),
        public_key: aws_smithy_types::base64::encode(der),
    })
}
