//! The five EC2 account-region settings that guard AMIs.

use aws_sdk_ec2::operation::{
    get_allowed_images_settings::GetAllowedImagesSettingsOutput,
    get_ebs_default_kms_key_id::GetEbsDefaultKmsKeyIdOutput,
    get_ebs_encryption_by_default::GetEbsEncryptionByDefaultOutput,
    get_image_block_public_access_state::GetImageBlockPublicAccessStateOutput,
    get_snapshot_block_public_access_state::GetSnapshotBlockPublicAccessStateOutput,
};

use super::calls::{CallResult, enum_text, text};
use super::harvest::Harvest;
use crate::aws::CallError;

/// The five answers, as they came.
pub struct Fetched {
    encryption: CallResult<GetEbsEncryptionByDefaultOutput>,
    key: CallResult<GetEbsDefaultKmsKeyIdOutput>,
    image_bpa: CallResult<GetImageBlockPublicAccessStateOutput>,
    snapshot_bpa: CallResult<GetSnapshotBlockPublicAccessStateOutput>,
    allowed: CallResult<GetAllowedImagesSettingsOutput>,
}

pub async fn fetch(ec2: &aws_sdk_ec2::Client) -> Fetched {
    let (encryption, key, image_bpa, snapshot_bpa, allowed) = tokio::join!(
        ec2.get_ebs_encryption_by_default().send(),
        ec2.get_ebs_default_kms_key_id().send(),
        ec2.get_image_block_public_access_state().send(),
        ec2.get_snapshot_block_public_access_state().send(),
        ec2.get_allowed_images_settings().send(),
    );
    Fetched {
        encryption: encryption.map_err(|e| CallError::from_sdk(&e)),
        key: key.map_err(|e| CallError::from_sdk(&e)),
        image_bpa: image_bpa.map_err(|e| CallError::from_sdk(&e)),
        snapshot_bpa: snapshot_bpa.map_err(|e| CallError::from_sdk(&e)),
        allowed: allowed.map_err(|e| CallError::from_sdk(&e)),
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
}
