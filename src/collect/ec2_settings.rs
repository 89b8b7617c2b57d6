//! The EC2 account-region settings that guard AMIs and the instances
//! launched from them.

use aws_sdk_ec2::operation::{
    get_allowed_images_settings::GetAllowedImagesSettingsOutput,
    get_ebs_default_kms_key_id::GetEbsDefaultKmsKeyIdOutput,
    get_ebs_encryption_by_default::GetEbsEncryptionByDefaultOutput,
    get_image_block_public_access_state::GetImageBlockPublicAccessStateOutput,
    get_instance_metadata_defaults::GetInstanceMetadataDefaultsOutput,
    get_snapshot_block_public_access_state::GetSnapshotBlockPublicAccessStateOutput,
};

use super::calls::{CallResult, enum_text, text};
use super::harvest::Harvest;
use crate::aws::CallError;

/// The answers, as they came.
pub struct Fetched {
    encryption: CallResult<GetEbsEncryptionByDefaultOutput>,
    key: CallResult<GetEbsDefaultKmsKeyIdOutput>,
    image_bpa: CallResult<GetImageBlockPublicAccessStateOutput>,
    snapshot_bpa: CallResult<GetSnapshotBlockPublicAccessStateOutput>,
    allowed: CallResult<GetAllowedImagesSettingsOutput>,
    metadata_defaults: CallResult<GetInstanceMetadataDefaultsOutput>,
}

pub async fn fetch(ec2: &aws_sdk_ec2::Client) -> Fetched {
    let (encryption, key, image_bpa, snapshot_bpa, allowed, metadata_defaults) = tokio::join!(
        ec2.get_ebs_encryption_by_default().send(),
        ec2.get_ebs_default_kms_key_id().send(),
        ec2.get_image_block_public_access_state().send(),
        ec2.get_snapshot_block_public_access_state().send(),
        ec2.get_allowed_images_settings().send(),
        ec2.get_instance_metadata_defaults().send(),
    );
    Fetched {
        encryption: encryption.map_err(|e| CallError::from_sdk(&e)),
        key: key.map_err(|e| CallError::from_sdk(&e)),
        image_bpa: image_bpa.map_err(|e| CallError::from_sdk(&e)),
        snapshot_bpa: snapshot_bpa.map_err(|e| CallError::from_sdk(&e)),
        allowed: allowed.map_err(|e| CallError::from_sdk(&e)),
        metadata_defaults: metadata_defaults.map_err(|e| CallError::from_sdk(&e)),
    }
}

/// Keeps the settings in the harvest; each failed read is a scan error and
/// leaves its column null.
pub fn record(harvest: &mut Harvest, fetched: Fetched) {
    harvest.settings.ebs_encryption_by_default = harvest
        .take("ec2", "GetEbsEncryptionByDefault", None, fetched.encryption)
        .and_then(|o| o.ebs_encryption_by_default());
    harvest.settings.ebs_default_kms_key_id = harvest
        .take("ec2", "GetEbsDefaultKmsKeyId", None, fetched.key)
        .and_then(|o| text(o.kms_key_id()));
    harvest.settings.image_block_public_access = harvest
        .take(
            "ec2",
            "GetImageBlockPublicAccessState",
            None,
            fetched.image_bpa,
        )
        .and_then(|o| text(o.image_block_public_access_state()));
    harvest.settings.snapshot_block_public_access = harvest
        .take(
            "ec2",
            "GetSnapshotBlockPublicAccessState",
            None,
            fetched.snapshot_bpa,
        )
        .and_then(|o| enum_text(o.state()));
    harvest.settings.allowed_images_state = harvest
        .take("ec2", "GetAllowedImagesSettings", None, fetched.allowed)
        .and_then(|o| text(o.state()));
    harvest.settings.imds_default_http_tokens = harvest
        .take(
            "ec2",
            "GetInstanceMetadataDefaults",
            None,
            fetched.metadata_defaults,
        )
        .map(|o| imds_default_http_tokens(&o));
}

/// The account-level HttpTokens default: `required`, `optional`, or
/// `no-preference` when the answer names none ("To remove a parameter's
/// account-level default setting, specify no-preference"; the answer's
/// HttpTokens takes only optional | required).
pub fn imds_default_http_tokens(out: &GetInstanceMetadataDefaultsOutput) -> String {
    out.account_level()
        .and_then(|a| a.http_tokens())
        .map_or_else(|| "no-preference".to_string(), |t| t.as_str().to_string())
}
