//! `amiaudit scan`: scan AWS (read-only) and write an inventory.

use std::path::{Path, PathBuf};

use super::Outcome;
use crate::collect::{self, ScanOptions};
use crate::error::Result;
use crate::inventory::{self, TableFormat};
use crate::output::Staging;

/// Scans and writes the inventory into `out` at once (see `output`).
pub fn run(options: &ScanOptions, out: &Path, format: TableFormat, stats: bool) -> Result<Outcome> {
    let staging = Staging::begin(out, &inventory::OUTPUT, &super::OUTPUT_KINDS)?;
    let outcome = collect::scan_blocking(options)?;
    inventory::save(&outcome.inventory, staging.dir(), format)?;
    let committed = staging.commit()?;
    let destination: PathBuf = committed.path.clone();
    let mut text = summary(&outcome.stats, &destination);
    if stats {
        text.push_str(&stats_text(&outcome.stats));
    }
    let mut outcome = Outcome::ok(text);
    outcome
        .stderr
        .extend(super::kept_warning(&committed).map(|w| format!("warning: {w}")));
    Ok(outcome)
}

/// The lines printed after a scan.
pub fn summary(stats: &collect::ScanStats, out: &Path) -> String {
    let created = stats
        .operations
        .get("ec2:CreateImageUsageReport")
        .map(|c| c.calls)
        .unwrap_or_default();
    let created = if created > 0 {
        format!(
            "{created} CreateImageUsageReport calls (image_usage_reports = create; a refusal is a scan error): a later scan reads the reports made\n"
        )
    } else {
        String::new()
    };
    format!(
        "scanned {} accounts, {} account-regions: {} images, {} scan errors{}\n{created}wrote {}\n",
        stats.accounts,
        stats.account_regions,
        stats.images,
        stats.errors,
        if stats.interrupted {
            " (interrupted: inventory marked incomplete)"
        } else {
            ""
        },
        out.display()
    )
}

/// `--stats`: per-operation calls, retries and throttles, then totals.
pub fn stats_text(stats: &collect::ScanStats) -> String {
    let mut out = format!(
        "{:<48} {:>8} {:>8} {:>9}\n",
        "operation", "calls", "retries", "throttled"
    );
    for (operation, c) in &stats.operations {
        out.push_str(&format!(
            "{:<48} {:>8} {:>8} {:>9}\n",
            operation,
            c.calls,
            c.attempts.saturating_sub(c.calls),
            c.throttled
        ));
    }
    out.push_str(&format!(
        "{:<48} {:>8} {:>8} {:>9}\nwall time {:.2} s; {:.2} calls per image\n",
        "total",
        stats.calls(),
        stats.retries(),
        stats.throttled(),
        stats.wall_seconds,
        stats.calls() as f64 / stats.images.max(1) as f64
    ));
    out
}
