//! Benchmark harness (not a timed test): evaluates the full rule pack on a
//! synthetic inventory and runs a full audit, printing wall times and the
//! process's peak memory. Numbers for this machine live in BENCHMARKS.md.
//!
//! cargo bench --bench audit -- [--accounts N] [--regions R] [--images K]
//!     [--audit [--formats default|all|csv,json,...] [--compress]]
//!     [--policies DIR] [--per-rule [--rule ID]...]
//!
//! `--policies` evaluates the rules of DIR instead of the built-in pack (to
//! time a rewritten query without a rebuild); `--rule` keeps only the named
//! rules.
//!
//! The inventory is written once by the `amiaudit synth` binary (in a child
//! process, so its memory does not count here) under the target directory.

// Benchmark harness: a failed unwrap ends the run, which is what it should do.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::string_slice
)]

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use amiaudit::config::{AuditSection, Config};
use amiaudit::evaluate::evaluate;
use amiaudit::inventory;
use amiaudit::policy::ParamOverrides;
use amiaudit::render::OutputFormat;
use amiaudit::settings::{self, AuditPlan, AuditRequest};

#[path = "support/cli.rs"]
mod cli;
use cli::{arg, peak_rss_mib};

/// Every value given after a flag `name`, in order.
fn values<'a>(args: &'a [String], name: &'a str) -> impl Iterator<Item = &'a str> {
    args.windows(2)
        .filter(move |w| w[0] == name)
        .map(|w| w[1].as_str())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (accounts, regions, images) = (
        arg(&args, "--accounts", 1000),
        arg(&args, "--regions", 4),
        arg(&args, "--images", 250),
    );
    let target = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or(target);
    let dir = target.join(format!("bench-inventories/{accounts}x{regions}x{images}"));
    if !dir.join("manifest.json").is_file() {
        let t = Instant::now();
        let status = Command::new(env!("CARGO_BIN_EXE_amiaudit"))
            .args([
                "synth",
                "--accounts",
                &accounts.to_string(),
                "--regions",
                &regions.to_string(),
            ])
            .args(["--images-per-region", &images.to_string(), "--out"])
            .arg(&dir)
            .status()
            .expect("run amiaudit synth");
        assert!(status.success());
        println!(
            "synth        {:>8.2} s (once, cached in {})",
            t.elapsed().as_secs_f64(),
            dir.display()
        );
    }

    if args.iter().any(|a| a == "--audit") {
        let out = tempdir(&target);
        // The harness's own directory, emptied first: replacing an earlier
        // audit (re-hashing its files before they go) is not the audit.
        let _ = std::fs::remove_dir_all(&out);
        let t = Instant::now();
        let plan = AuditPlan::resolve(
            AuditRequest {
                inventory: Some(dir.clone()),
                out: amiaudit::deliver::Location::Local(out.clone()),
                ..Default::default()
            },
            AuditSection {
                formats: Some(bench_formats(&args)),
                compress: Some(args.iter().any(|a| a == "--compress")),
                ..Default::default()
            },
            &Config::default(),
        )
        .expect("audit settings");
        let outcome = amiaudit::cmd::audit::run(plan).expect("audit");
        let secs = t.elapsed().as_secs_f64();
        let mut files: Vec<(String, u64)> = walkdir::WalkDir::new(&out)
            .into_iter()
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_file())
            .map(|e| {
                let name = e.path().strip_prefix(&out).unwrap().display().to_string();
                (name, e.metadata().unwrap().len())
            })
            .collect();
        files.sort_by_key(|f| std::cmp::Reverse(f.1));
        let total: u64 = files.iter().map(|f| f.1).sum();
        println!(
            "full audit   {secs:>8.2} s  (load, evaluate, write; {:.1} MB in {} files; exit {})",
            total as f64 / 1e6,
            files.len(),
            outcome.exit_code
        );
        for (name, len) in files.iter().take(8) {
            println!("  {name:<40} {:>9.1} MB", *len as f64 / 1e6);
        }
        println!("peak memory  {:>8.0} MiB", peak_rss_mib());
        return;
    }

    let t = Instant::now();
    let inv = inventory::load(&dir).expect("load inventory");
    let load = t.elapsed().as_secs_f64();
    let n_images = inv.table("images").expect("images").height();
    let policies: Vec<PathBuf> = values(&args, "--policies").map(PathBuf::from).collect();
    let mut pack = settings::load_pack(&policies).expect("policy pack");
    let only: Vec<&str> = values(&args, "--rule").collect();
    if !only.is_empty() {
        pack.rules.retain(|rule| only.contains(&rule.id.as_str()));
    }
    if args.iter().any(|a| a == "--per-rule") {
        for rule in &pack.rules {
            let t = Instant::now();
            let ev = evaluate(&inv, std::slice::from_ref(rule), &ParamOverrides::new());
            println!(
                "  {:<34} {:>6.2} s {:>9} results",
                rule.id,
                t.elapsed().as_secs_f64(),
                ev.results.height()
            );
        }
    }
    let t = Instant::now();
    let evaluation = evaluate(&inv, &pack.rules, &ParamOverrides::new());
    let eval = t.elapsed().as_secs_f64();
    assert!(
        evaluation.rule_errors.is_empty(),
        "{:?}",
        evaluation.rule_errors
    );
    println!(
        "inventory    {accounts} accounts x {regions} regions x {images} images = {n_images} AMIs"
    );
    println!("load         {load:>8.2} s");
    println!(
        "evaluate     {eval:>8.2} s  ({} rules, {} results)",
        pack.rules.len(),
        evaluation.results.height()
    );
    println!("peak memory  {:>8.0} MiB (load + evaluate)", peak_rss_mib());
}

/// The formats `--formats` names: `default` (what `audit` writes unless
/// asked), `all`, or a comma-separated list; CSV, JSON and HTML if absent
/// (the first rows of BENCHMARKS.md).
fn bench_formats(args: &[String]) -> Vec<OutputFormat> {
    let named = args
        .iter()
        .position(|a| a == "--formats")
        .and_then(|i| args.get(i + 1));
    match named.map(String::as_str) {
        None => vec![OutputFormat::Csv, OutputFormat::Json, OutputFormat::Html],
        Some("default") => OutputFormat::DEFAULT.to_vec(),
        Some("all") => OutputFormat::ALL.to_vec(),
        Some(list) => list
            .split(',')
            .map(|f| serde_json::from_value(f.into()).expect("a format name"))
            .collect(),
    }
}

/// The audit's output directory (the harness's own).
fn tempdir(target: &std::path::Path) -> PathBuf {
    target.join("bench-out")
}
