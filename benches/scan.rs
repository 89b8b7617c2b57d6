//! Scan benchmarks (not timed tests); numbers for this machine live in
//! BENCHMARKS.md.
//!
//! cargo bench --bench scan -- simulated [--accounts 500] [--regions 17]
//!     [--images 10] [--factory-images 400] [--latency-ms 100] [--concurrency N]
//!     [--throttle [--bucket 100] [--refill 20]]
//!   With --throttle, EC2 answers through token buckets of its documented
//!   size per account, region and action, and the bench also prints the
//!   throttled responses, the calls given up and the bound.
//!   A simulated organization answered in-process after a fixed latency per
//!   call. Prints the org-wide wall time, then the wall time of the slowest
//!   account-region scanned alone (its own critical path, same discovery),
//!   and their ratio.
//!
//! cargo bench --bench scan -- moto [--accounts 10] [--regions 2] [--images 20] [--plain]
//!   A moto-seeded organization (moto from scripts/install-moto.sh). Prints
//!   the scan's wall time and calls, then moto's own request rate for the
//!   per-image call, measured directly.

// Benchmark harness: a failed unwrap ends the run, which is what it should do.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::string_slice
)]

#[path = "support/cli.rs"]
mod cli;
#[path = "../tests/it/moto.rs"]
#[allow(dead_code)]
mod moto;
#[path = "support/simulated_aws.rs"]
mod simulated_aws;

use std::time::{Duration, Instant};

use amiaudit::collect::{self, ScanOptions, ScanStats};
use amiaudit::discover::{AccountSelection, RegionSelection};
use cli::{arg, peak_rss_mib};
use simulated_aws::{REGIONS, SimulatedOrg};

fn report(label: &str, stats: &ScanStats) {
    println!(
        "{label}: {:.2} s wall, {} account-regions, {} images, {} snapshots, {} calls ({:.0} calls/s), {} retries, {} errors",
        stats.wall_seconds,
        stats.account_regions,
        stats.images,
        stats.snapshots,
        stats.calls(),
        stats.calls() as f64 / stats.wall_seconds,
        stats.retries(),
        stats.errors,
    );
    let op = |name: &str| stats.operations.get(name).map_or(0, |c| c.calls);
    println!(
        "  per image: {:.2} launch-permission calls; per snapshot: {:.2} permission calls; {} other calls",
        op("ec2:DescribeImageAttribute") as f64 / stats.images.max(1) as f64,
        op("ec2:DescribeSnapshotAttribute") as f64 / stats.snapshots.max(1) as f64,
        stats.calls() - op("ec2:DescribeImageAttribute") - op("ec2:DescribeSnapshotAttribute"),
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    if args.iter().any(|a| a == "moto") {
        runtime.block_on(moto_bench(&args));
    } else {
        runtime.block_on(simulated_bench(&args));
    }
    println!("peak RSS {:.0} MiB", peak_rss_mib());
}

async fn simulated_bench(args: &[String]) {
    let org = SimulatedOrg {
        accounts: arg(args, "--accounts", 500),
        regions: arg(args, "--regions", 17).min(REGIONS.len()),
        images: arg(args, "--images", 10),
        factory_images: arg(args, "--factory-images", 400),
        loose_snapshots: arg(args, "--loose-snapshots", 0),
        latency: Duration::from_millis(arg(args, "--latency-ms", 100) as u64),
        throttle: args.iter().any(|a| a == "--throttle").then(|| {
            simulated_aws::TokenBuckets::new(
                arg(args, "--bucket", 100) as f64,
                arg(args, "--refill", 20) as f64,
            )
        }),
    };
    let mut options = ScanOptions::default();
    if args.iter().any(|a| a == "--concurrency") {
        options.concurrency = arg(args, "--concurrency", options.concurrency);
    }
    options.connection.region = Some("us-east-1".to_string());
    options.connection.http_client = Some(org.clone().client());
    options.connection.credentials = Some(moto::static_credentials("AKIDSIMCALLER", "x", None));
    options.accounts = AccountSelection::Organization { ou: None };
    println!(
        "simulated org: {} accounts x {} regions, {} images per account in 2 regions, {} in the factory account-region, {} loose snapshots where images are, {} ms per call, concurrency {}",
        org.accounts,
        org.regions,
        org.images,
        org.factory_images,
        org.loose_snapshots,
        org.latency.as_millis(),
        options.concurrency
    );
    let full = collect::scan(&options).await.expect("scan");
    report("org-wide scan", &full.stats);
    if let Some(buckets) = &org.throttle {
        println!(
            "  under EC2's token buckets ({} tokens, {}/s per account, region and action): {} throttled responses ({:.1} % of calls), {} calls given up",
            buckets.capacity,
            buckets.refill_per_second,
            buckets.throttled(),
            buckets.throttled() as f64 * 100.0 / full.stats.calls().max(1) as f64,
            full.stats.errors
        );
    }

    // The slowest account-region alone, through the same discovery.
    let factory = SimulatedOrg::account_id(1);
    let mut alone = options.clone();
    alone.exclude_accounts = (0..org.accounts)
        .map(SimulatedOrg::account_id)
        .filter(|a| *a != factory)
        .collect();
    alone.regions = RegionSelection::List(vec![REGIONS[0].to_string()]);
    // Fresh buckets: the org-wide scan emptied the factory's.
    let fresh = SimulatedOrg {
        throttle: org
            .throttle
            .as_ref()
            .map(|b| simulated_aws::TokenBuckets::new(b.capacity, b.refill_per_second)),
        ..org.clone()
    };
    alone.connection.http_client = Some(fresh.client());
    let single = collect::scan(&alone).await.expect("scan");
    report("slowest account-region alone", &single.stats);
    println!(
        "ratio org-wide / critical path: {:.2} (target <= 1.5)",
        full.stats.wall_seconds / single.stats.wall_seconds
    );
    if let Some(buckets) = &org.throttle {
        // The bound: the slowest account-region's calls per action beyond
        // the burst, at the refill rate (every action's bucket drains at once).
        let bound = single
            .stats
            .operations
            .iter()
            .filter(|(op, _)| op.starts_with("ec2:"))
            .map(|(_, c)| (c.calls as f64 - buckets.capacity).max(0.0) / buckets.refill_per_second)
            .fold(0.0, f64::max);
        println!(
            "bound (largest account-region's calls per action after the burst / refill): {bound:.1} s; org-wide / bound: {:.2} (target <= 1.15)",
            full.stats.wall_seconds / bound.max(f64::EPSILON)
        );
    }
}

async fn moto_bench(args: &[String]) {
    use aws_sdk_ec2::types as ec2;
    let (accounts, regions, images) = (
        arg(args, "--accounts", 10),
        arg(args, "--regions", 2),
        arg(args, "--images", 20),
    );
    let moto = moto::Moto::start();
    let seed_started = Instant::now();
    let org = aws_sdk_organizations::Client::new(&moto.config().await);
    org.create_organization()
        .feature_set(aws_sdk_organizations::types::OrganizationFeatureSet::All)
        .send()
        .await
        .unwrap();
    let mut ids = vec!["123456789012".to_string()];
    for i in 1..accounts {
        let status = org
            .create_account()
            .email(format!("aws+{i}@bench.example"))
            .account_name(format!("bench-{i}"))
            .send()
            .await
            .unwrap();
        ids.push(
            status
                .create_account_status()
                .unwrap()
                .account_id()
                .unwrap()
                .to_string(),
        );
    }
    let mut first_image = None;
    for id in &ids {
        let config = if id == "123456789012" {
            moto.config().await
        } else {
            moto.account(id).await
        };
        for region in &REGIONS[..regions] {
            let client = aws_sdk_ec2::Client::new(
                &config
                    .to_builder()
                    .region(aws_config::Region::new(region.to_string()))
                    .build(),
            );
            for n in 0..images {
                let image =
                    moto::register_image(&client, &format!("web-golden-20261101-v{n}")).await;
                first_image.get_or_insert((client.clone(), image));
            }
        }
    }
    println!(
        "moto org: {accounts} accounts x {regions} regions x {images} AMIs, seeded in {:.1} s",
        seed_started.elapsed().as_secs_f64()
    );
    let mut options = ScanOptions::default();
    options.connection.endpoint_url = Some(moto.endpoint.clone());
    options.connection.region = Some("us-east-1".to_string());
    // The calls moto lacks are answered in-process, as in the tests; with
    // --plain, moto answers them HTTP 500, every time.
    if !args.iter().any(|a| a == "--plain") {
        options.connection.http_client = Some(moto::MotoGaps::client("000000000000"));
    }
    options.connection.credentials = Some(moto::static_credentials("test", "test", None));
    options.accounts = AccountSelection::Organization { ou: None };
    options.regions =
        RegionSelection::List(REGIONS[..regions].iter().map(|r| r.to_string()).collect());
    let outcome = collect::scan(&options).await.expect("scan");
    report("scan", &outcome.stats);
    let forwarded: u64 = outcome
        .stats
        .operations
        .iter()
        .filter(|(op, _)| {
            !matches!(
                op.as_str(),
                "ec2:GetEbsDefaultKmsKeyId"
                    | "ec2:GetImageBlockPublicAccessState"
                    | "ec2:GetSnapshotBlockPublicAccessState"
                    | "ec2:GetAllowedImagesSettings"
            )
        })
        .map(|(_, c)| c.calls)
        .sum();
    println!("  of which answered by moto: {forwarded}");

    // moto's own rate for the per-image call, 8 in flight as in the scan.
    let (client, image) = first_image.expect("an image");
    let n = 400;
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    let permits = std::sync::Arc::new(tokio::sync::Semaphore::new(8));
    for _ in 0..n {
        let (client, image, permits) = (client.clone(), image.clone(), permits.clone());
        set.spawn(async move {
            let _p = permits.acquire_owned().await.unwrap();
            client
                .describe_image_attribute()
                .image_id(image)
                .attribute(ec2::ImageAttributeName::LaunchPermission)
                .send()
                .await
                .unwrap();
        });
    }
    while set.join_next().await.is_some() {}
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "moto alone: {n} DescribeImageAttribute in {seconds:.2} s = {:.0} requests/s",
        n as f64 / seconds
    );
}
