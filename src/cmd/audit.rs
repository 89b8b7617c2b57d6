//! `amiaudit audit`: evaluate the rules over an inventory (or a live scan)
//! and write the reports and the evidence, all at once.

use std::path::{Path, PathBuf};

use super::Outcome;
use crate::collect;
use crate::error::{EXIT_FINDINGS, EXIT_INCOMPLETE, EXIT_INPUT, EXIT_OK, Error, Result};
use crate::evaluate::evaluate;
use crate::evidence::{self, EvidenceManifest, INVENTORY_DIR};
use crate::inventory::{self, TableFormat};
use crate::output::Staging;
use crate::render::{self, ReportContext};
use crate::results::summarize;
use crate::settings::{AuditPlan, Source};

pub fn run(mut plan: AuditPlan) -> Result<Outcome> {
    let staging = Staging::begin(&plan.out, &evidence::OUTPUT, &super::OUTPUT_KINDS)?;
    let dir = staging.dir().to_path_buf();
    // With --bundle, the bundle beside the audit must be the earlier
    // audit's own: checked before any work, and again before the swap.
    earlier_bundle(plan.bundle, staging.destination())?;
    // The signing key is checked before any work: a key that cannot sign
    // is a usage error, not an audit lost at the end.
    let signer = match &plan.sign_with_kms {
        Some((connection, key)) => Some(crate::deliver::block_on(
            crate::deliver::kms::Signer::connect(connection, key),
        )??),
        None => None,
    };
    let mut stdout = String::new();
    let mut digests = evidence::Digests::new();
    let inventory = read_inventory(&plan, &dir, &mut digests, &mut stdout)?;
    let mut evaluation = evaluate(&inventory, &plan.pack.rules, &plan.overrides);
    if !evaluation.rule_errors.is_empty() {
        // An audit missing a rule's results would read as complete: nothing
        // is committed, and whatever `--out` held stays as it was.
        return Ok(nothing_committed(&plan, &evaluation, stdout));
    }
    let waiver_uses = match &plan.waivers {
        Some(w) => w.apply(&inventory, &mut evaluation.results)?,
        None => Vec::new(),
    };
    let (context, files) = write_reports(&plan, &dir, &inventory, &evaluation, waiver_uses)?;
    digests.extend(files.iter().cloned());
    let policy_files = evidence::embed_policies(
        &dir,
        &plan.pack.files,
        plan.waivers.as_ref().map(|w| w.text.as_str()),
    )?;
    let fingerprint = write_evidence(
        &dir,
        &inventory,
        &context.meta,
        policy_files,
        signer.as_ref(),
        &digests,
    )?;
    // The bundle is written before the swap (from the staged files, which
    // are the audit's), placed after it.
    let staged_bundle = if plan.bundle {
        Some(stage_bundle(&dir, staging.destination())?)
    } else {
        None
    };
    let earlier_bundle = earlier_bundle(plan.bundle, staging.destination())?;
    let committed = staging.commit()?;
    plan.warnings.extend(super::kept_warning(&committed));
    let destination = committed.path;
    let mut written: Vec<String> = files
        .iter()
        .map(|(path, _)| moved(path, &dir, &destination).display().to_string())
        .collect();
    written.push(destination.join(evidence::MANIFEST).display().to_string());
    if signer.is_some() {
        written.push(destination.join(evidence::SIGNATURE).display().to_string());
    }
    // From here the audit is in place: whatever fails is reported with
    // the rest, and exits 2, instead of hiding it.
    let mut delivered = Delivered::default();
    let bundle = match staged_bundle {
        Some(temp) => match evidence::place_bundle(
            temp,
            &evidence::bundle_path(&destination)?,
            earlier_bundle.as_deref(),
        ) {
            Ok(path) => {
                written.push(path.display().to_string());
                Some(path)
            }
            Err(e) => {
                delivered.errors.push(e.to_string());
                None
            }
        },
        None => None,
    };
    // The upload's own temporary copy (if any) goes once all is done.
    let upload_copy = match plan.delivery.take() {
        Some(delivery) => upload(delivery, &destination, bundle.as_deref(), &mut delivered)?,
        None => None,
    };
    if upload_copy.is_some() {
        written.clear();
    }
    import_to_security_hub(&plan, &destination, &mut delivered);
    drop(upload_copy);
    Ok(outcome(
        &plan,
        &context,
        stdout,
        &written,
        &delivered,
        &fingerprint,
    ))
}

/// With --bundle, the sha256 of the earlier audit's bundle at the bundle's
/// place (None: nothing there); anything else there is an error.
fn earlier_bundle(bundle: bool, destination: &Path) -> Result<Option<String>> {
    if !bundle {
        return Ok(None);
    }
    evidence::check_bundle_replaceable(
        &evidence::bundle_path(destination)?,
        destination,
        &bundle_name(destination),
    )
}

/// Writes the bundle of the staged audit `dir` beside `destination`.
fn stage_bundle(dir: &Path, destination: &Path) -> Result<tempfile::NamedTempFile> {
    evidence::write_bundle_beside(
        dir,
        &bundle_name(destination),
        &evidence::bundle_path(destination)?,
    )
}

/// A run whose rules did not all run: it exits 2 and commits nothing.
fn nothing_committed(
    plan: &AuditPlan,
    evaluation: &crate::evaluate::Evaluation,
    stdout: String,
) -> Outcome {
    let stderr = evaluation
        .rule_errors
        .iter()
        .map(|e| {
            format!(
                "error: {e} (nothing was written: `{}` is as it was)",
                plan.out.display()
            )
        })
        .collect();
    Outcome {
        exit_code: EXIT_INPUT,
        stdout,
        stderr,
    }
}

/// Reads the inventory the audit judges into `dir` (copied and checked, or
/// scanned), recording its files' digests.
fn read_inventory(
    plan: &AuditPlan,
    dir: &Path,
    digests: &mut evidence::Digests,
    stdout: &mut String,
) -> Result<inventory::Inventory> {
    match &plan.source {
        // The audit reads its own copy of the inventory, checked as it is
        // copied: an inventory edited or replaced during the run is an
        // error, never evidence that does not verify.
        Source::Directory(path) => {
            evidence::embed_inventory(path, dir, digests)?;
            inventory::load_as(&dir.join(INVENTORY_DIR), path)
        }
        Source::Scan(options) => {
            let outcome = collect::scan_blocking(options)?;
            let inv = dir.join(INVENTORY_DIR);
            inventory::save(&outcome.inventory, &inv, TableFormat::Parquet)?;
            stdout.push_str(&super::scan::summary(
                &outcome.stats,
                &plan.out.join(INVENTORY_DIR),
            ));
            if plan.stats {
                stdout.push_str(&super::scan::stats_text(&outcome.stats));
            }
            let inventory = inventory::load(&inv)?;
            for table in inventory.manifest().tables.values() {
                digests.insert(inv.join(&table.file), table.sha256.clone());
            }
            Ok(inventory)
        }
    }
}

/// Writes every report format into `dir`; returns the report context and
/// the files written with their sha256.
fn write_reports(
    plan: &AuditPlan,
    dir: &Path,
    inventory: &inventory::Inventory,
    evaluation: &crate::evaluate::Evaluation,
    waiver_uses: Vec<crate::waivers::WaiverUse>,
) -> Result<(ReportContext, Vec<(PathBuf, String)>)> {
    // The CSVs need only the results; they are written while the report
    // context (every non-passing finding with its account and rule) is
    // built and the other formats are rendered from it.
    let mut meta = render::audit_meta(inventory, &plan.pack, plan.framework.clone())?;
    meta.storage = plan.delivery.as_ref().map(|d| d.storage.clone());
    let (csv_files, reports) = rayon::join(
        || {
            render::write_csv(
                dir,
                &plan.formats,
                plan.compress,
                inventory,
                &plan.pack,
                evaluation,
                &meta,
            )
        },
        || {
            let summary = summarize(inventory, evaluation, &plan.pack.rules)?;
            let mut context =
                ReportContext::build(inventory, &plan.pack, evaluation, summary, meta.clone())?;
            context.waivers = waiver_uses;
            context.meta.waivers_sha256 = plan.waivers.as_ref().map(|w| w.sha256.clone());
            if let Some(old) = &plan.baseline {
                context.set_baseline(old);
                context.diff = Some(crate::diff::compare(old, &context.document()));
            }
            let files = render::write_reports(
                dir,
                &plan.formats,
                plan.compress,
                evaluation,
                &context,
                plan.templates.as_deref(),
            )?;
            Ok::<_, Error>((context, files))
        },
    );
    let (context, mut files) = reports?;
    files.extend(csv_files?);
    Ok((context, files))
}

/// Writes manifest.json (and its KMS signature); returns the audit's
/// fingerprint, the manifest's sha256.
fn write_evidence(
    dir: &Path,
    inventory: &inventory::Inventory,
    meta: &crate::findings::AuditMeta,
    policy_files: std::collections::BTreeMap<String, String>,
    signer: Option<&crate::deliver::kms::Signer>,
    digests: &evidence::Digests,
) -> Result<String> {
    let manifest = inventory.manifest();
    let timestamp = |t: Option<chrono::DateTime<chrono::Utc>>| {
        t.map(|t| inventory::format_timestamp(t.timestamp_millis()))
            .transpose()
    };
    let fingerprint = evidence::write_manifest(
        dir,
        EvidenceManifest {
            kind: evidence::KIND.to_string(),
            tool_version: meta.tool_version.to_string(),
            collected_at: meta.collected_at.clone(),
            scope: meta.scope.clone(),
            scan_started_at: timestamp(manifest.scan_started_at)?,
            scan_ended_at: timestamp(manifest.scan_ended_at)?,
            inventory_complete: meta.inventory_complete,
            policy_pack_sha256: meta.policy_pack_sha256.clone(),
            waivers_sha256: meta.waivers_sha256.clone(),
            framework: meta.framework.clone(),
            policy_files,
            storage: meta.storage.clone(),
            signing: signer.map(|s| s.signing().clone()),
            files: Default::default(),
        },
        digests,
    )?;
    if let Some(signer) = signer {
        let manifest_path = dir.join(evidence::MANIFEST);
        let manifest = std::fs::read(&manifest_path).map_err(|e| Error::io(&manifest_path, e))?;
        let signature = crate::deliver::block_on(signer.sign(&manifest))??;
        let path = dir.join(evidence::SIGNATURE);
        std::fs::write(&path, signature).map_err(|e| Error::io(&path, e))?;
    }
    Ok(fingerprint)
}

/// What happened after the audit was in place: lines for stdout, and
/// failures (each exits 2).
#[derive(Default)]
struct Delivered {
    text: String,
    errors: Vec<String>,
    failed: bool,
}

/// Uploads the audit in place at `destination` to S3. A failed upload is
/// an error that keeps the audit (its temporary copy too) and says where;
/// returns the upload's temporary copy, to be removed when all is done.
fn upload(
    delivery: crate::settings::Delivery,
    destination: &Path,
    bundle: Option<&Path>,
    delivered: &mut Delivered,
) -> Result<Option<tempfile::TempDir>> {
    let uploaded = crate::deliver::block_on(async {
        // Connected again (one GetBucketLocation): the planning client
        // belonged to a runtime that is gone, and its pooled connections
        // with it.
        let store =
            crate::deliver::s3::Store::connect(&delivery.connection, delivery.location.clone())
                .await?;
        store.upload(destination, &delivery.storage, bundle).await
    })
    .and_then(|uploaded| uploaded);
    match uploaded {
        Ok(count) => {
            delivered
                .text
                .push_str(&crate::text::terminal_line(&format!(
                    "uploaded {count} objects to {} ({})\n",
                    delivery.location.url(),
                    delivery.storage.describe()
                )));
            Ok(delivery.temp)
        }
        Err(e) => {
            // Never lose the audit: the temporary copy stays.
            if let Some(temp) = delivery.temp {
                let _ = temp.keep();
            }
            Err(Error::input(format!(
                "{e}; the audit is complete and kept at {} (its manifest was not uploaded, so the prefix does not verify)",
                destination.display()
            )))
        }
    }
}

/// Imports the audit's findings into Security Hub when asked.
fn import_to_security_hub(plan: &AuditPlan, destination: &Path, delivered: &mut Delivered) {
    let Some((connection, role)) = &plan.security_hub else {
        return;
    };
    match crate::deliver::security_hub::export_written(destination, connection, role.as_deref()) {
        Ok(report) => {
            delivered.failed |= report.failed > 0 || report.workflow_failed > 0;
            delivered.text.push_str(&report.text());
        }
        Err(e) => {
            delivered.failed = true;
            delivered
                .text
                .push_str(&crate::text::terminal_line(&format!(
                    "security hub: nothing imported: {e}\n"
                )));
        }
    }
}

/// The exit code and what the audit prints.
fn outcome(
    plan: &AuditPlan,
    context: &ReportContext,
    mut stdout: String,
    written: &[String],
    delivered: &Delivered,
    fingerprint: &str,
) -> Outcome {
    let failing_at_threshold = plan.fail_on.threshold().is_some_and(|t| {
        context
            .summary
            .by_severity
            .iter()
            .any(|row| row.severity <= t && row.counts.fail > 0)
    });
    let exit_code =
        if !context.rule_errors.is_empty() || delivered.failed || !delivered.errors.is_empty() {
            EXIT_INPUT
        } else if plan.fail_on_incomplete && !context.summary.coverage.complete {
            EXIT_INCOMPLETE
        } else if failing_at_threshold {
            EXIT_FINDINGS
        } else {
            EXIT_OK
        };
    stdout.push_str(&render::terminal_summary(context, 5));
    if let Some(chosen) = &plan.baseline_chosen {
        stdout.push_str(&crate::text::terminal_line(&format!(
            "baseline: {chosen} (the newest audit below --baseline-latest)\n"
        )));
    }
    if let Some(diff) = &context.diff {
        stdout.push_str(&crate::text::terminal_field(&diff.summary_line()));
        stdout.push('\n');
    }
    for path in written {
        stdout.push_str(&format!("wrote {path}\n"));
    }
    stdout.push_str(&delivered.text);
    stdout.push_str(&format!(
        "audit fingerprint (sha256 of manifest.json): {fingerprint}\n"
    ));
    let mut stderr: Vec<String> = plan
        .warnings
        .iter()
        .map(|w| format!("warning: {w}"))
        .collect();
    stderr.extend(context.rule_errors.iter().map(|e| format!("error: {e}")));
    stderr.extend(delivered.errors.iter().map(|e| format!("error: {e}")));
    Outcome {
        exit_code,
        stdout,
        stderr,
    }
}

/// Where a file written in the staging directory lives once moved into place.
fn moved(path: &Path, staging: &Path, destination: &Path) -> PathBuf {
    path.strip_prefix(staging)
        .map(|rel| destination.join(rel))
        .unwrap_or_else(|_| path.to_path_buf())
}

/// The name a bundle files an audit directory's entries under.
fn bundle_name(destination: &Path) -> String {
    destination
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}
