//! What one account-region yields: typed rows, failed calls, and how the
//! scan of it went.

use crate::aws::CallError;
use crate::discover::{RegionInfo, failed_call};
use crate::inventory::schema::{ScanErrorRow, TableRow, Value};

/// How the scan of one account-region went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegionScan {
    Ok,
    Partial,
    Failed,
    NotOptedIn,
}

impl RegionScan {
    pub fn as_str(self) -> &'static str {
        match self {
            RegionScan::Ok => "ok",
            RegionScan::Partial => "partial",
            RegionScan::Failed => "failed",
            RegionScan::NotOptedIn => "not-opted-in",
        }
    }
}

/// One account-region's rows and errors.
#[derive(Debug)]
pub struct Harvest {
    pub account_id: String,
    pub region: String,
    pub opt_in_status: Option<String>,
    /// `Failed` until the account-region finished or was skipped.
    pub scan: RegionScan,
    /// The settings columns of the `regions` row (the rest is filled on assembly).
    pub settings: Settings,
    /// (table, cells in schema order) of every row but `regions`.
    pub rows: Vec<(&'static str, Vec<Value>)>,
    pub errors: Vec<ScanErrorRow>,
    pub images: usize,
    /// Calls that succeeded, to tell `partial` from `failed`.
    pub successes: usize,
}

/// The account-region settings that guard AMIs; None where not read.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub ebs_encryption_by_default: Option<bool>,
    pub ebs_default_kms_key_id: Option<String>,
    pub image_block_public_access: Option<String>,
    pub snapshot_block_public_access: Option<String>,
    pub allowed_images_state: Option<String>,
    pub inspector_ec2_status: Option<String>,
    pub imds_default_http_tokens: Option<String>,
}

impl Harvest {
    pub fn new(account_id: &str, region: &RegionInfo) -> Self {
        Harvest {
            account_id: account_id.to_string(),
            region: region.region.clone(),
            opt_in_status: region.opt_in_status.clone(),
            scan: RegionScan::Failed,
            settings: Settings::default(),
            rows: Vec::new(),
            errors: Vec::new(),
            images: 0,
            successes: 0,
        }
    }

    pub fn fail(
        &mut self,
        service: &str,
        operation: &str,
        resource: Option<&str>,
        error: &CallError,
    ) {
        self.errors.push(failed_call(
            &self.account_id,
            Some(&self.region),
            service,
            operation,
            resource,
            error,
        ));
    }

    /// Keeps a typed row.
    pub fn push<R: TableRow>(&mut self, row: R) {
        self.rows.push((R::TABLE, row.into_values()));
    }

    /// Records a call's outcome: the value, or an error row and None.
    pub fn take<T>(
        &mut self,
        service: &str,
        operation: &str,
        resource: Option<&str>,
        outcome: Result<T, CallError>,
    ) -> Option<T> {
        match outcome {
            Ok(value) => {
                self.successes += 1;
                Some(value)
            }
            Err(error) => {
                self.fail(service, operation, resource, &error);
                None
            }
        }
    }

    /// The status once every call is made.
    pub fn finish(&mut self) {
        self.scan = if self.errors.is_empty() {
            RegionScan::Ok
        } else if self.successes == 0 {
            RegionScan::Failed
        } else {
            RegionScan::Partial
        };
    }
}
