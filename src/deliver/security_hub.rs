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
    /// The accounts findings were imported as.
    pub importers: std::collections::BTreeSet<String>,
    /// Findings whose workflow was set (BatchUpdateFindings).
    pub workflow_updated: usize,
    /// Findings whose workflow could not be set (each in `failures`).
    pub workflow_failed: usize,
}

impl ExportReport {
    /// The lines printed for the user; failures one per line (the first
    /// 50, then a count).
    pub fn text(&self) -> String {
        let accounts: Vec<&str> = self.importers.iter().map(String::as_str).collect();
        let out = format!(
            "security hub: imported {} of {} findings ({} archived as resolved) into {} region(s) as account {}; {} failed in {} of {} batches; workflow set on {} ({} failed)\n",
            self.imported,
            self.total,
            self.archived,
            self.regions.len(),
            accounts.join(", "),
            self.failed,
            self.failed_batches,
            self.batches,
            self.workflow_updated,
            self.workflow_failed
        );
        // Ids, codes and messages come from the audit and from AWS: each
        // line stays one line.
        let mut out = crate::text::terminal_line(&out);
        for f in self.failures.iter().take(50) {
            out.push_str(&crate::text::terminal_line(&format!(
                "  failed: {} ({}): {}: {}\n",
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
            verification.problems()
        )));
    }
    findings_file(dir)
}

/// The findings of an audit this run has just written (and hashed): read
/// without verifying it a second time.
fn findings_file(dir: &Path) -> Result<Vec<AsffFinding>> {
    let (path, text) = crate::output::file::read_either(
        dir,
        asff::FILE,
        "not found; write the audit with the asff format (--format asff or all, or --security-hub)",
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

/// What the importer sets with BatchUpdateFindings after an import: the
/// workflow a finding should be in, with a note saying why.
fn workflow_update(f: &AsffFinding) -> Option<(sh::WorkflowStatus, String)> {
    let field = |key: &str| f.product_fields.get(key).map(String::as_str).unwrap_or("");
    let collected = field("amiaudit/CollectedAt");
    let (status, note) = if f.record_state == "ARCHIVED" {
        (
            sh::WorkflowStatus::Resolved,
            format!(
                "amiaudit: resolved in the audit of {collected}: the resource passes or is gone"
            ),
        )
    } else if f.workflow.status == "SUPPRESSED" {
        (
            sh::WorkflowStatus::Suppressed,
            format!(
                "amiaudit: waived until {}: {}",
                field("amiaudit/WaiverExpires"),
                field("amiaudit/WaiverReason")
            ),
        )
    } else if field("amiaudit/Reopened") == "true" {
        (
            sh::WorkflowStatus::New,
            format!("amiaudit: failing again in the audit of {collected}"),
        )
    } else {
        return None;
    };
    Some((status, asff::clip(&note, NOTE_MAX)))
}

/// Security Hub keeps a note of at most 512 characters.
const NOTE_MAX: usize = 512;

/// Imports `findings` as the caller of `connection`, or, with `role`, into
/// each account a finding is about through that role there (so each
/// account's findings live in its own hub, where its owners and the
/// organization's aggregator read them). Then sets the workflow of what
/// was imported where it must change (see [`workflow_update`]).
pub async fn import(
    connection: &Connection,
    findings: Vec<AsffFinding>,
    role: Option<&str>,
) -> Result<ExportReport> {
    let base = crate::aws::base_config(connection).await;
    let (caller, partition) = caller_identity(&base).await?;
    // UpdatedAt is the time of this import, so that Security Hub takes it
    // (an update not newer than the stored finding is ignored); CreatedAt
    // too for a finding first observed in this audit (equal at creation).
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut report = ExportReport {
        total: findings.len(),
        ..Default::default()
    };
    let targets = targets(findings, role, &caller);
    let mut credentials: BTreeMap<
        String,
        std::result::Result<
            Option<aws_credential_types::provider::SharedCredentialsProvider>,
            String,
        >,
    > = BTreeMap::new();
    for ((account, region), findings) in targets {
        *report.regions.entry(region.clone()).or_default() += findings.len();
        if !credentials.contains_key(&account) {
            let got = match role {
                Some(name) if account != caller => {
                    let arn = format!("arn:{partition}:iam::{account}:role/{name}");
                    assume(&base, &arn).await.map(Some)
                }
                _ => Ok(None),
            };
            credentials.insert(account.clone(), got);
        }
        let provider = match credentials.get(&account) {
            // Inserted above for every account.
            None => continue,
            Some(Ok(provider)) => provider.clone(),
            Some(Err(why)) => {
                report.failed += findings.len();
                report.failed_batches += 1;
                report.batches += 1;
                for f in &findings {
                    report.failures.push(Failure {
                        id: f.id.clone(),
                        region: region.clone(),
                        code: "AssumeRole".to_string(),
                        message: why.clone(),
                    });
                }
                continue;
            }
        };
        report.importers.insert(account.clone());
        let mut config = aws_sdk_securityhub::config::Builder::from(&base)
            .region(aws_config::Region::new(region.clone()));
        if let Some(provider) = provider {
            config = config.credentials_provider(provider);
        }
        let client = aws_sdk_securityhub::Client::from_conf(config.build());
        let product_arn = asff::default_product_arn(&partition, &region, &account);
        let mut updates: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
        for batch in findings.chunks(BATCH) {
            let imported = import_batch(
                &client,
                batch,
                &account,
                &product_arn,
                &now,
                &region,
                &mut report,
            )
            .await;
            for f in batch.iter().filter(|f| imported.contains(f.id.as_str())) {
                if let Some((status, note)) = workflow_update(f) {
                    updates
                        .entry((status.as_str().to_string(), note))
                        .or_default()
                        .push(f.id.clone());
                }
            }
        }
        for ((status, note), ids) in updates {
            for chunk in ids.chunks(BATCH) {
                update_workflow(
                    &client,
                    chunk,
                    &product_arn,
                    &status,
                    &note,
                    &region,
                    &mut report,
                )
                .await;
            }
        }
    }
    Ok(report)
}

/// The importing account and its partition (sts:GetCallerIdentity).
async fn caller_identity(base: &aws_config::SdkConfig) -> Result<(String, String)> {
    let identity = aws_sdk_sts::Client::new(base)
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| {
            Error::input(format!(
                "security hub: cannot tell who is importing (sts:GetCallerIdentity: {}); check the credentials",
                sdk_error_text(&e)
            ))
        })?;
    let caller = identity
        .account()
        .filter(|a| !a.is_empty())
        .ok_or_else(|| Error::input("security hub: sts:GetCallerIdentity named no account"))?
        .to_string();
    let partition = identity
        .arn()
        .and_then(|arn| arn.split(':').nth(1))
        .unwrap_or("aws")
        .to_string();
    Ok((caller, partition))
}

/// Findings by (importing account, region): the caller's own, or with a
/// role the account each finding is about.
fn targets(
    findings: Vec<AsffFinding>,
    role: Option<&str>,
    caller: &str,
) -> BTreeMap<(String, String), Vec<AsffFinding>> {
    let mut targets: BTreeMap<(String, String), Vec<AsffFinding>> = BTreeMap::new();
    for f in findings {
        let account = match role {
            Some(_) => f
                .product_fields
                .get("amiaudit/AccountId")
                .cloned()
                .unwrap_or_else(|| caller.to_string()),
            None => caller.to_string(),
        };
        let region = f
            .resources
            .first()
            .map(|r| r.region.clone())
            .unwrap_or_else(|| asff::ACCOUNT_WIDE_REGION.to_string());
        targets.entry((account, region)).or_default().push(f);
    }
    targets
}

/// Credentials of `role_arn`, fetched now so a denied role is known here.
async fn assume(
    base: &aws_config::SdkConfig,
    role_arn: &str,
) -> std::result::Result<aws_credential_types::provider::SharedCredentialsProvider, String> {
    use aws_credential_types::provider::ProvideCredentials;
    let provider = aws_config::sts::AssumeRoleProvider::builder(role_arn)
        .configure(base)
        .session_name("amiaudit-security-hub")
        .build()
        .await;
    match provider.provide_credentials().await {
        Ok(_) => Ok(aws_credential_types::provider::SharedCredentialsProvider::new(provider)),
        Err(e) => Err(format!("cannot assume {role_arn}: {e}")),
    }
}

/// One BatchImportFindings call; the ids Security Hub took.
async fn import_batch<'a>(
    client: &aws_sdk_securityhub::Client,
    batch: &'a [AsffFinding],
    account: &str,
    product_arn: &str,
    now: &str,
    region: &str,
    report: &mut ExportReport,
) -> std::collections::HashSet<&'a str> {
    report.batches += 1;
    let converted = batch
        .iter()
        .map(|f| to_sdk(f, account, product_arn, now))
        .collect();
    match client
        .batch_import_findings()
        .set_findings(Some(converted))
        .send()
        .await
    {
        Ok(out) => {
            let failed = out.failed_findings();
            // Security Hub's count, or its list if that is longer: a
            // failure it counts but does not name still counts.
            let failed_count = (out.failed_count().unwrap_or(0).max(0) as usize)
                .max(failed.len())
                .min(batch.len());
            let failed_ids: std::collections::HashSet<&str> =
                failed.iter().filter_map(|f| f.id()).collect();
            report.imported += batch.len() - failed_count;
            report.failed += failed_count;
            report.archived += batch
                .iter()
                .filter(|f| f.record_state == "ARCHIVED" && !failed_ids.contains(f.id.as_str()))
                .count();
            if failed_count > 0 {
                report.failed_batches += 1;
            }
            for f in failed {
                report.failures.push(Failure {
                    id: f.id().unwrap_or("(no id)").to_string(),
                    region: region.to_string(),
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
                    region: region.to_string(),
                    code: "FailedCount".to_string(),
                    message: "BatchImportFindings counted failures it did not list".to_string(),
                });
            }
            // A batch with unnamed failures: which ones were taken is not
            // known, so none has its workflow set.
            if failed_count > failed.len() {
                return std::collections::HashSet::new();
            }
            batch
                .iter()
                .map(|f| f.id.as_str())
                .filter(|id| !failed_ids.contains(id))
                .collect()
        }
        Err(e) => {
            report.failed_batches += 1;
            report.failed += batch.len();
            let why = sdk_error_text(&e);
            let code = why.split(':').next().unwrap_or("").to_string();
            for f in batch {
                report.failures.push(Failure {
                    id: f.id.clone(),
                    region: region.to_string(),
                    code: code.clone(),
                    message: why.clone(),
                });
            }
            std::collections::HashSet::new()
        }
    }
}

/// One BatchUpdateFindings call: `ids` to `status`, with `note`.
async fn update_workflow(
    client: &aws_sdk_securityhub::Client,
    ids: &[String],
    product_arn: &str,
    status: &str,
    note: &str,
    region: &str,
    report: &mut ExportReport,
) {
    let identifiers = ids
        .iter()
        .map(|id| {
            sh::AwsSecurityFindingIdentifier::builder()
                .id(id)
                .product_arn(product_arn)
                .build()
        })
        .collect();
    let note = sh::NoteUpdate::builder()
        .text(note)
        .updated_by("amiaudit")
        .build();
    let sent = client
        .batch_update_findings()
        .set_finding_identifiers(Some(identifiers))
        .workflow(
            sh::WorkflowUpdate::builder()
                .status(sh::WorkflowStatus::from(status))
                .build(),
        )
        .note(note)
        .send()
        .await;
    match sent {
        Ok(out) => {
            let unprocessed = out.unprocessed_findings();
            report.workflow_updated += out.processed_findings().len();
            report.workflow_failed += unprocessed.len();
            for u in unprocessed {
                report.failures.push(Failure {
                    id: u
                        .finding_identifier()
                        .and_then(|i| i.id())
                        .unwrap_or("(no id)")
                        .to_string(),
                    region: region.to_string(),
                    code: u.error_code().unwrap_or("").to_string(),
                    message: format!(
                        "workflow not set to {status}: {}",
                        u.error_message().unwrap_or("")
                    ),
                });
            }
        }
        Err(e) => {
            report.workflow_failed += ids.len();
            let why = sdk_error_text(&e);
            for id in ids {
                report.failures.push(Failure {
                    id: id.clone(),
                    region: region.to_string(),
                    code: why.split(':').next().unwrap_or("").to_string(),
                    message: format!("workflow not set to {status}: {why}"),
                });
            }
        }
    }
}

/// The ASFF finding as the SDK's type, filed for `account` under
/// `product_arn`. (The SDK's builders check nothing: the required fields
/// are required by [`AsffFinding`]'s own deserialisation.)
fn to_sdk(f: &AsffFinding, account: &str, product_arn: &str, now: &str) -> sh::AwsSecurityFinding {
    let created_at = if f.first_observed_at == f.last_observed_at {
        now
    } else {
        f.created_at.as_str()
    };
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
        .created_at(created_at)
        .updated_at(now)
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
pub fn export(dir: &Path, connection: &Connection, role: Option<&str>) -> Result<ExportReport> {
    let findings = read_findings(dir)?;
    super::block_on(import(connection, findings, role))?
}

/// `audit --security-hub`: the audit was written (and, bound for S3,
/// verified before upload) by this run a moment ago.
pub fn export_written(
    dir: &Path,
    connection: &Connection,
    role: Option<&str>,
) -> Result<ExportReport> {
    let findings = findings_file(dir)?;
    super::block_on(import(connection, findings, role))?
}
