//! AWS Security Hub: an audit's `findings.asff.json` imported with
//! BatchImportFindings, in batches of 100, each finding into its own
//! region's hub.
//!
//! The audit directory is verified first: what is imported is exactly what
//! the evidence holds, except the importing account, which Security Hub
//! requires as both `AwsAccountId` and the owner of `ProductArn` (the
//! account's own integration, `product/<account>/default`) for a custom
//! integration. Run it in the account where the organization's findings
//! are read (the Security Hub delegated administrator); each finding names
//! the account it is about in its id and in `amiaudit/AccountId`. Every
//! batch's failures, whole-call or per finding, are reported and counted;
//! none is dropped.

use std::collections::BTreeMap;
use std::path::Path;

use aws_sdk_securityhub::types as sh;

use crate::aws::Connection;
use crate::error::{Error, Result};
use crate::render::asff::{self, AsffFinding};

use super::sdk_error_text;

/// BatchImportFindings takes at most 100 findings a call.
pub const BATCH: usize = 100;

/// A finding Security Hub did not take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub id: String,
    pub region: String,
    pub code: String,
    pub message: String,
}

/// What an export did.
#[derive(Debug, Default)]
pub struct ExportReport {
    pub total: usize,
    pub imported: usize,
    /// Findings not imported (each named in `failures`, or counted there
    /// when Security Hub did not name them).
    pub failed: usize,
    /// Findings sent as ARCHIVED (resolved since the baseline).
    pub archived: usize,
    pub batches: usize,
    pub failed_batches: usize,
    pub failures: Vec<Failure>,
    /// Region -> findings sent there.
    pub regions: BTreeMap<String, usize>,
    pub importer_account: String,
}

impl ExportReport {
    /// The lines printed for the user; failures one per line (the first
    /// 50, then a count).
    pub fn text(&self) -> String {
        let out = format!(
            "security hub: imported {} of {} findings ({} archived as resolved) into {} region(s) as account {}; {} failed in {} of {} batches\n",
            self.imported,
            self.total,
            self.archived,
            self.regions.len(),
            self.importer_account,
            self.failed,
            self.failed_batches,
            self.batches
        );
        // Ids, codes and messages come from the audit and from AWS: each
        // line stays one line.
        let mut out = crate::text::terminal_line(&out);
        for f in self.failures.iter().take(50) {
            out.push_str(&crate::text::terminal_line(&format!(
                "  not imported: {} ({}): {}: {}\n",
                f.id, f.region, f.code, f.message
            )));
        }
        if self.failures.len() > 50 {
            out.push_str(&format!("  and {} more\n", self.failures.len() - 50));
        }
        out
    }
}

/// Reads and checks the findings of a verified audit directory.
pub fn read_findings(dir: &Path) -> Result<Vec<AsffFinding>> {
    let verification = crate::evidence::verify(dir)?;
    if !verification.intact() {
        return Err(Error::input(format!(
            "{}: the audit does not verify ({}); refusing to import findings that are not what was written (amiaudit verify says more)",
            dir.display(),
            crate::cmd::verify::problems(&verification)
        )));
    }
    findings_file(dir)
}

/// The findings of an audit this run has just written (and hashed): read
/// without verifying it a second time.
fn findings_file(dir: &Path) -> Result<Vec<AsffFinding>> {
    let path = dir.join(asff::FILE);
    let text = Error::read_text(
        &path,
        "not found; write the audit with the asff format (--format asff, in the default set)",
    )?;
    serde_json::from_str(&text).map_err(|e| {
        Error::input(format!(
            "{}:{}:{}: not an amiaudit ASFF file: {}",
            path.display(),
            e.line(),
            e.column(),
            crate::error::strip_serde_position(&e.to_string())
        ))
    })
}

/// Imports `findings` as the caller of `connection`.
pub async fn import(connection: &Connection, findings: Vec<AsffFinding>) -> Result<ExportReport> {
    let base = crate::aws::base_config(connection).await;
    let identity = aws_sdk_sts::Client::new(&base)
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| {
            Error::input(format!(
                "security hub: cannot tell who is importing (sts:GetCallerIdentity: {}); check the credentials",
                sdk_error_text(&e)
            ))
        })?;
    let account = identity
        .account()
        .filter(|a| !a.is_empty())
        .ok_or_else(|| Error::input("security hub: sts:GetCallerIdentity named no account"))?
        .to_string();
    let partition = identity
        .arn()
        .and_then(|arn| arn.split(':').nth(1))
        .unwrap_or("aws")
        .to_string();
    let mut report = ExportReport {
        total: findings.len(),
        importer_account: account.clone(),
        ..Default::default()
    };
    let mut by_region: BTreeMap<String, Vec<AsffFinding>> = BTreeMap::new();
    for f in findings {
        let region = f
            .resources
            .first()
            .map(|r| r.region.clone())
            .unwrap_or_else(|| crate::aws::DEFAULT_REGION.to_string());
        by_region.entry(region).or_default().push(f);
    }
    for (region, findings) in by_region {
        report.regions.insert(region.clone(), findings.len());
        let client = aws_sdk_securityhub::Client::from_conf(
            aws_sdk_securityhub::config::Builder::from(&base)
                .region(aws_config::Region::new(region.clone()))
                .build(),
        );
        let product_arn = asff::default_product_arn(&partition, &region, &account);
        for batch in findings.chunks(BATCH) {
            report.batches += 1;
            let converted = batch
                .iter()
                .map(|f| to_sdk(f, &account, &product_arn))
                .collect();
            match client
                .batch_import_findings()
                .set_findings(Some(converted))
                .send()
                .await
            {
                Ok(out) => {
                    let failed = out.failed_findings();
                    // Security Hub's count, or its list if that is longer:
                    // a failure it counts but does not name still counts.
                    let failed_count = (out.failed_count().unwrap_or(0).max(0) as usize)
                        .max(failed.len())
                        .min(batch.len());
                    let failed_ids: std::collections::HashSet<&str> =
                        failed.iter().filter_map(|f| f.id()).collect();
                    report.imported += batch.len() - failed_count;
                    report.failed += failed_count;
                    report.archived += batch
                        .iter()
                        .filter(|f| {
                            f.record_state == "ARCHIVED" && !failed_ids.contains(f.id.as_str())
                        })
                        .count();
                    if failed_count > 0 {
                        report.failed_batches += 1;
                    }
                    for f in failed {
                        report.failures.push(Failure {
                            id: f.id().unwrap_or("(no id)").to_string(),
                            region: region.clone(),
                            code: f.error_code().unwrap_or("").to_string(),
                            message: f.error_message().unwrap_or("").to_string(),
                        });
                    }
                    if failed_count > failed.len() {
                        report.failures.push(Failure {
                            id: format!(
                                "{} finding(s) not named by Security Hub",
                                failed_count - failed.len()
                            ),
                            region: region.clone(),
                            code: "FailedCount".to_string(),
                            message: "BatchImportFindings counted failures it did not list"
                                .to_string(),
                        });
                    }
                }
                Err(e) => {
                    report.failed_batches += 1;
                    report.failed += batch.len();
                    let why = sdk_error_text(&e);
                    let code = why.split(':').next().unwrap_or("").to_string();
                    for f in batch {
                        report.failures.push(Failure {
                            id: f.id.clone(),
                            region: region.clone(),
                            code: code.clone(),
                            message: why.clone(),
                        });
                    }
                }
            }
        }
    }
    Ok(report)
}

/// The ASFF finding as the SDK's type, filed for `account` under
/// `product_arn`. (The SDK's builders check nothing: the required fields
/// are required by [`AsffFinding`]'s own deserialisation.)
fn to_sdk(f: &AsffFinding, account: &str, product_arn: &str) -> sh::AwsSecurityFinding {
    let resources = f
        .resources
        .iter()
        .map(|r| {
            sh::Resource::builder()
                .r#type(&r.r#type)
                .id(&r.id)
                .partition(sh::Partition::from(r.partition.as_str()))
                .region(&r.region)
                .build()
        })
        .collect();
    let mut builder = sh::AwsSecurityFinding::builder()
        .schema_version(&f.schema_version)
        .id(&f.id)
        .product_arn(product_arn)
        .product_name(&f.product_name)
        .company_name(&f.company_name)
        .generator_id(&f.generator_id)
        .aws_account_id(account)
        .set_types(Some(f.types.clone()))
        .first_observed_at(&f.first_observed_at)
        .last_observed_at(&f.last_observed_at)
        .created_at(&f.created_at)
        .updated_at(&f.updated_at)
        .severity(
            sh::Severity::builder()
                .label(sh::SeverityLabel::from(f.severity.label.as_str()))
                .build(),
        )
        .title(&f.title)
        .description(&f.description)
        .remediation(
            sh::Remediation::builder()
                .recommendation(
                    sh::Recommendation::builder()
                        .text(&f.remediation.recommendation.text)
                        .set_url(f.remediation.recommendation.url.clone())
                        .build(),
                )
                .build(),
        )
        .set_product_fields(Some(
            f.product_fields
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ))
        .set_resources(Some(resources))
        .finding_provider_fields(
            sh::FindingProviderFields::builder()
                .severity(
                    sh::FindingProviderSeverity::builder()
                        .label(sh::SeverityLabel::from(
                            f.finding_provider_fields.severity.label.as_str(),
                        ))
                        .build(),
                )
                .set_types(Some(f.finding_provider_fields.types.clone()))
                .build(),
        )
        .compliance(
            sh::Compliance::builder()
                .status(sh::ComplianceStatus::from(f.compliance.status.as_str()))
                .set_related_requirements(Some(f.compliance.related_requirements.clone()))
                .build(),
        )
        .workflow(
            sh::Workflow::builder()
                .status(sh::WorkflowStatus::from(f.workflow.status.as_str()))
                .build(),
        )
        .record_state(sh::RecordState::from(f.record_state.as_str()));
    if f.description.is_empty() {
        builder = builder.description(&f.title);
    }
    builder.build()
}

/// `amiaudit export security-hub DIR`, blocking.
pub fn export(dir: &Path, connection: &Connection) -> Result<ExportReport> {
    let findings = read_findings(dir)?;
    super::block_on(import(connection, findings))?
}

/// `audit --security-hub`: the audit was written (and, bound for S3,
/// verified before upload) by this run a moment ago.
pub fn export_written(dir: &Path, connection: &Connection) -> Result<ExportReport> {
    let findings = findings_file(dir)?;
    super::block_on(import(connection, findings))?
}
