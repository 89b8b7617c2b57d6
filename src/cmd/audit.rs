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
    let bundle_check = || -> Result<Option<String>> {
        if !plan.bundle {
            return Ok(None);
        }
        let destination = staging.destination();
        evidence::check_bundle_replaceable(
            &evidence::bundle_path(destination)?,
            destination,
            &bundle_name(destination),
        )
    };
    bundle_check()?;
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
    // The audit reads its own copy of the inventory, checked as it is
    // copied: an inventory edited or replaced during the run is an error,
    // never evidence that does not verify.
    let (inventory, scanned) = match &plan.source {
        Source::Directory(path) => {
            evidence::embed_inventory(path, &dir, &mut digests)?;
            (inventory::load_as(&dir.join(INVENTORY_DIR), path)?, false)
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
            (inventory::load(&inv)?, true)
        }
    };
    let mut evaluation = evaluate(&inventory, &plan.pack.rules, &plan.overrides);
    if !evaluation.rule_errors.is_empty() {
        // An audit missing a rule's results would read as complete: nothing
        // is committed, and whatever `--out` held stays as it was.
        let stderr: Vec<String> = evaluation
            .rule_errors
            .iter()
            .map(|e| {
                format!(
                    "error: {e} (nothing was written: `{}` is as it was)",
                    plan.out.display()
                )
            })
            .collect();
        return Ok(Outcome {
            exit_code: EXIT_INPUT,
            stdout,
            stderr,
        });
    }
    let waiver_uses = match &plan.waivers {
        Some(w) => w.apply(&inventory, &mut evaluation.results)?,
        None => Vec::new(),
    };
    if scanned {
        for table in inventory.manifest().tables.values() {
            digests.insert(
                dir.join(INVENTORY_DIR).join(&table.file),
                table.sha256.clone(),
            );
        }
    }
    let policy_files = evidence::embed_policies(
        &dir,
        &plan.pack.files,
        plan.waivers.as_ref().map(|w| w.text.as_str()),
    )?;
    // The CSVs need only the results; they are written while the report
    // context (every non-passing finding with its account and rule) is
    // built and the other formats are rendered from it.
    let mut meta = render::audit_meta(&inventory, &plan.pack, plan.framework.clone())?;
    meta.storage = plan.delivery.as_ref().map(|d| d.storage.clone());
    let (csv_files, reports) = rayon::join(
        || {
            render::write_csv(
                &dir,
                &plan.formats,
                &inventory,
                &plan.pack,
                &evaluation,
                &meta,
            )
        },
        || {
            let summary = summarize(&inventory, &evaluation, &plan.pack.rules)?;
            let mut context =
                ReportContext::build(&inventory, &plan.pack, &evaluation, summary, meta.clone())?;
            context.waivers = waiver_uses;
            context.meta.waivers_sha256 = plan.waivers.as_ref().map(|w| w.sha256.clone());
            if let Some(old) = &plan.baseline {
                context.set_baseline(old);
                context.diff = Some(crate::diff::compare(old, &context.document()));
            }
            let files = render::write_reports(
                &dir,
                &plan.formats,
                &evaluation,
                &context,
                plan.templates.as_deref(),
            )?;
            Ok::<_, Error>((context, files))
        },
    );
    let (context, mut files) = reports?;
    files.extend(csv_files?);
    digests.extend(files.iter().cloned());
    let meta = &context.meta;
    let manifest = inventory.manifest();
    let fingerprint = evidence::write_manifest(
        &dir,
        EvidenceManifest {
            kind: evidence::KIND.to_string(),
            tool_version: meta.tool_version.to_string(),
            collected_at: meta.collected_at.clone(),
            scope: meta.scope.clone(),
            scan_started_at: manifest
                .scan_started_at
                .map(|t| inventory::format_timestamp(t.timestamp_millis()))
                .transpose()?,
            scan_ended_at: manifest
                .scan_ended_at
                .map(|t| inventory::format_timestamp(t.timestamp_millis()))
                .transpose()?,
            inventory_complete: meta.inventory_complete,
            policy_pack_sha256: meta.policy_pack_sha256.clone(),
            waivers_sha256: meta.waivers_sha256.clone(),
            framework: meta.framework.clone(),
            policy_files,
            storage: meta.storage.clone(),
            signing: signer.as_ref().map(|s| s.signing().clone()),
            files: Default::default(),
        },
        &digests,
    )?;
    if let Some(signer) = &signer {
        let manifest_path = dir.join(evidence::MANIFEST);
        let manifest = std::fs::read(&manifest_path).map_err(|e| Error::io(&manifest_path, e))?;
        let signature = crate::deliver::block_on(signer.sign(&manifest))??;
        let path = dir.join(evidence::SIGNATURE);
        std::fs::write(&path, signature).map_err(|e| Error::io(&path, e))?;
    }
    // The bundle is written before the swap (from the staged files, which
    // are the audit's), placed after it.
    let staged_bundle = if plan.bundle {
        let destination = staging.destination();
        Some(evidence::write_bundle_beside(
            &dir,
            &bundle_name(destination),
            &evidence::bundle_path(destination)?,
        )?)
    } else {
        None
    };
    let earlier_bundle = bundle_check()?;
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
    let mut bundle = None;
    let mut exit_delivery = false;
    let mut delivery_errors = Vec::new();
    if let Some(temp) = staged_bundle {
        // The audit is in place: a bundle that cannot be placed is
        // reported like a failed delivery (exit 2), its file kept.
        match evidence::place_bundle(
            temp,
            &evidence::bundle_path(&destination)?,
            earlier_bundle.as_deref(),
        ) {
            Ok(path) => {
                written.push(path.display().to_string());
                bundle = Some(path);
            }
            Err(e) => {
                exit_delivery = true;
                delivery_errors.push(e.to_string());
            }
        }
    }
    let mut delivered = String::new();
    let mut upload_copy = None;
    if let Some(delivery) = plan.delivery.take() {
        let uploaded = crate::deliver::block_on(async {
            // Connected again (one GetBucketLocation): the planning client
            // belonged to a runtime that is gone, and its pooled
            // connections with it.
            let store =
                crate::deliver::s3::Store::connect(&delivery.connection, delivery.location.clone())
                    .await?;
            store
                .upload(&destination, &delivery.storage, bundle.as_deref())
                .await
        })
        .and_then(|uploaded| uploaded);
        match uploaded {
            Ok(count) => {
                delivered.push_str(&crate::text::terminal_line(&format!(
                    "uploaded {count} objects to {} ({})\n",
                    delivery.location.url(),
                    delivery.storage.describe()
                )));
                if delivery.temp.is_some() {
                    // Only the upload's own temporary copy goes.
                    written.clear();
                }
            }
            Err(e) => {
                // Never lose the audit: the temporary copy stays.
                let kept = match delivery.temp {
                    Some(temp) => {
                        let _ = temp.keep();
                        destination.display().to_string()
                    }
                    None => destination.display().to_string(),
                };
                return Err(Error::input(format!(
                    "{e}; the audit is complete and kept at {kept} (its manifest was not uploaded, so the prefix does not verify)"
                )));
            }
        }
        upload_copy = delivery.temp;
    }
    if let Some((connection, role)) = &plan.security_hub {
        // The audit is written (and uploaded): a failed import is reported
        // with everything else, and exits 2, instead of hiding the rest.
        match crate::deliver::security_hub::export_written(
            &destination,
            connection,
            role.as_deref(),
        ) {
            Ok(report) => {
                exit_delivery = report.failed > 0 || report.workflow_failed > 0;
                delivered.push_str(&report.text());
            }
            Err(e) => {
                exit_delivery = true;
                delivered.push_str(&crate::text::terminal_line(&format!(
                    "security hub: nothing imported: {e}\n"
                )));
            }
        }
    }
    drop(upload_copy);
    let failing_at_threshold = plan.fail_on.threshold().is_some_and(|t| {
        context
            .summary
            .by_severity
            .iter()
            .any(|row| row.severity <= t && row.counts.fail > 0)
    });
    let exit_code = if !evaluation.rule_errors.is_empty() || exit_delivery {
        EXIT_INPUT
    } else if plan.fail_on_incomplete && !context.summary.coverage.complete {
        EXIT_INCOMPLETE
    } else if failing_at_threshold {
        EXIT_FINDINGS
    } else {
        EXIT_OK
    };
    stdout.push_str(&render::terminal_summary(&context, 5));
    if let Some(chosen) = &plan.baseline_chosen {
        stdout.push_str(&crate::text::terminal_line(&format!(
            "baseline: {chosen} (the newest audit below --baseline-latest)\n"
        )));
    }
    if let Some(diff) = &context.diff {
        stdout.push_str(&crate::text::terminal_field(&diff.summary_line()));
        stdout.push('\n');
    }
    for path in &written {
        stdout.push_str(&format!("wrote {path}\n"));
    }
    stdout.push_str(&delivered);
    stdout.push_str(&format!(
        "audit fingerprint (sha256 of manifest.json): {fingerprint}\n"
    ));
    let mut stderr: Vec<String> = plan
        .warnings
        .iter()
        .map(|w| format!("warning: {w}"))
        .collect();
    stderr.extend(context.rule_errors.iter().map(|e| format!("error: {e}")));
    stderr.extend(delivery_errors.iter().map(|e| format!("error: {e}")));
    Ok(Outcome {
        exit_code,
        stdout,
        stderr,
    })
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
