//! EC2's request throttling, in the simulated AWS of the scan benchmark
//! (token buckets per account, region and action, `RequestLimitExceeded`
//! in EC2's wire format): a throttled account-region finishes with every
//! call answered, and a call given up is a scan error, never silence.
//! Small buckets so it runs in seconds; nothing here is timed.

#[path = "../../benches/support/simulated_aws.rs"]
#[allow(dead_code)]
mod simulated_aws;

use std::time::Duration;

use amiaudit::aws::Pacing;
use amiaudit::collect::{self, ScanOptions};
use amiaudit::discover::{AccountSelection, RegionSelection};
use simulated_aws::{REGIONS, SimulatedOrg, TokenBuckets};

const CAPACITY: f64 = 5.0;
const REFILL: f64 = 50.0;

fn org(refill_per_second: f64) -> SimulatedOrg {
    SimulatedOrg {
        accounts: 3,
        regions: 2,
        images: 4,
        factory_images: 120,
        loose_snapshots: 0,
        latency: Duration::from_millis(1),
        throttle: Some(TokenBuckets::new(CAPACITY, refill_per_second)),
    }
}

fn scan(org: &SimulatedOrg, pacing: Option<Pacing>, max_attempts: u32) -> collect::ScanOutcome {
    let mut options = ScanOptions::default();
    options.connection.region = Some(REGIONS[0].to_string());
    options.connection.http_client = Some(org.clone().client());
    options.connection.credentials = Some(super::moto::static_credentials("AKIDSIM", "x", None));
    options.connection.pacing = pacing;
    options.connection.max_attempts = max_attempts;
    options.accounts = AccountSelection::Organization { ou: None };
    options.regions = RegionSelection::List(REGIONS[..2].iter().map(|r| r.to_string()).collect());
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(collect::scan(&options))
        .expect("scan runs")
}

fn height(outcome: &collect::ScanOutcome, table: &str) -> usize {
    outcome.inventory.table(table).unwrap().height()
}

#[test]
fn a_paced_scan_reads_every_permission_under_the_buckets() {
    let org = org(REFILL);
    let outcome = scan(
        &org,
        Some(Pacing {
            capacity: CAPACITY,
            refill_per_second: REFILL,
        }),
        6,
    );
    let images = height(&outcome, "images");
    assert_eq!(images, 120 + 3 * 2 * 4 - 4, "{images}");
    // One launch permission and one snapshot permission read per image.
    assert_eq!(height(&outcome, "launch_permissions"), images);
    assert_eq!(height(&outcome, "scan_errors"), 0);
    assert_eq!(outcome.stats.errors, 0);
    let throttled = org.throttle.as_ref().unwrap().throttled();
    assert!(
        (throttled as f64) < 0.05 * outcome.stats.calls() as f64,
        "paced calls rarely meet an empty bucket: {throttled} of {}",
        outcome.stats.calls()
    );
}

#[test]
fn an_unpaced_scan_is_throttled_and_every_call_given_up_is_a_scan_error() {
    // Unpaced, with few attempts and buckets that refill once in two
    // seconds: however fast or slow the machine, most of the 120 launch
    // permission reads of the factory run out of attempts.
    let org = org(0.5);
    let outcome = scan(&org, None, 2);
    let buckets = org.throttle.as_ref().unwrap();
    assert!(buckets.throttled() > 0, "the buckets throttled nothing");
    let images = height(&outcome, "images");
    let read = height(&outcome, "launch_permissions");
    let errors = outcome.inventory.table("scan_errors").unwrap();
    let given_up = amiaudit::inventory::str_column(errors, "operation")
        .unwrap()
        .into_iter()
        .filter(|o| *o == Some("DescribeImageAttribute"))
        .count();
    assert!(read < images, "some launch permissions were given up");
    // Every image either has its permissions or a scan error naming it.
    assert_eq!(read + given_up, images, "{errors}");
    let codes = amiaudit::inventory::str_column(errors, "error_code").unwrap();
    assert!(
        codes.iter().all(|c| *c == Some("RequestLimitExceeded")),
        "{errors}"
    );
}
