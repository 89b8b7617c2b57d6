//! `amiaudit export security-hub DIR|s3://...`: a verified audit's
//! findings into AWS Security Hub.

use super::Outcome;
use crate::aws::Connection;
use crate::deliver::Location;
use crate::deliver::security_hub;
use crate::error::{EXIT_INPUT, EXIT_OK, Result};

pub fn security_hub(
    location: &Location,
    connection: &Connection,
    role: Option<&str>,
) -> Result<Outcome> {
    let report = match location {
        Location::Local(dir) => security_hub::export(dir, connection, role)?,
        Location::S3(s3) => {
            let download = crate::deliver::s3::fetch(connection, s3)?;
            download.require_plain_keys(s3)?;
            security_hub::export(&download.dir, connection, role)
                .map_err(|e| e.shown_as(&download.dir, &s3.url()))?
        }
    };
    Ok(outcome(&report))
}

/// Exit 2 when any finding was not imported or its workflow not set; the
/// report names each.
pub fn outcome(report: &security_hub::ExportReport) -> Outcome {
    let complete = report.failed == 0 && report.workflow_failed == 0;
    Outcome {
        exit_code: if complete { EXIT_OK } else { EXIT_INPUT },
        stdout: report.text(),
        stderr: if complete {
            Vec::new()
        } else {
            vec![format!(
                "error: security hub: {} finding(s) not imported and {} whose workflow was not set (listed above)",
                report.failed, report.workflow_failed
            )]
        },
    }
}
