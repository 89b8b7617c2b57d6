//! KMS: who manages each key that encrypts an image's volumes.

use aws_sdk_kms::operation::describe_key::DescribeKeyOutput;

use super::calls::{CallResult, enum_text};
use super::harvest::Harvest;
use crate::aws::CallError;
use crate::inventory::schema::KmsKeyRow;

pub async fn describe_key(
    client: &aws_sdk_kms::Client,
    key: String,
) -> CallResult<DescribeKeyOutput> {
    client
        .describe_key()
        .key_id(key)
        .send()
        .await
        .map_err(|e| CallError::from_sdk(&e))
}

pub fn key_rows(harvest: &mut Harvest, outcomes: Vec<(String, CallResult<DescribeKeyOutput>)>) {
    for (key_arn, outcome) in outcomes {
        let Some(out) = harvest.take("kms", "DescribeKey", Some(&key_arn), outcome) else {
            continue;
        };
        let Some(meta) = out.key_metadata() else {
            continue;
        };
        // The key may live in another account; the row belongs to its owner.
        let owner = meta
            .aws_account_id()
            .unwrap_or(&harvest.account_id)
            .to_string();
        let row = KmsKeyRow {
            account_id: owner,
            region: harvest.region.clone(),
            key_arn,
            key_manager: enum_text(meta.key_manager()),
            alias: None,
        };
        harvest.push(row);
    }
}
