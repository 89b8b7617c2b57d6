//! Which accounts use each own AMI, as an image usage report EC2 made
//! earlier says (DescribeImageUsageReports, DescribeImageUsageReportEntries).
//!
//! A report is created asynchronously and read once `available`; it expires
//! after 30 days. The scan never waits: with `[scan] image_usage_reports =
//! "reuse"` (the default) it reads, for each own AMI, the newest available
//! report no older than the configured age that covers every account and
//! both resource types; `create` also asks EC2 to make one
//! (CreateImageUsageReport, a write, with its own IAM policy) for each
//! shared AMI that has neither such a report nor one pending, for a later
//! scan to read; `off` reads none.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ec2::types::{Filter, ImageUsageReport, ImageUsageReportEntry};
use chrono::{DateTime, Duration, Utc};

use super::calls::{CallResult, all_pages, text};
use super::harvest::Harvest;
use crate::aws::CallError;
use crate::inventory::Millis;
use crate::inventory::schema::{ImageUsageEntryRow, ImageUsageReportRow};

/// Whether the scan reads image usage reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UsageReports {
    /// Read a ready report no older than the age given (days).
    #[default]
    Reuse,
    /// Read as `Reuse`, and create a report for each shared AMI without one.
    Create,
    Off,
}

impl UsageReports {
    pub fn as_str(self) -> &'static str {
        match self {
            UsageReports::Reuse => "reuse",
            UsageReports::Create => "create",
            UsageReports::Off => "off",
        }
    }

    pub fn parse(text: &str) -> Option<UsageReports> {
        [UsageReports::Reuse, UsageReports::Create, UsageReports::Off]
            .into_iter()
            .find(|v| v.as_str() == text)
    }
}

/// How the scan reads usage reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsageReportSettings {
    pub mode: UsageReports,
    /// The oldest report taken, in days.
    pub max_age_days: u32,
}

impl Default for UsageReportSettings {
    fn default() -> Self {
        UsageReportSettings {
            mode: UsageReports::Reuse,
            max_age_days: 7,
        }
    }
}

/// "Array Members: Maximum number of 200 items" (ImageIds, ReportIds).
const IDS_PER_CALL: usize = 200;

/// The two resource types a report must cover to say how an AMI is used.
const RESOURCE_TYPES: [&str; 2] = ["ec2:Instance", "ec2:LaunchTemplate"];

/// What the reads answered.
pub struct Fetched {
    /// Each batch of own AMIs asked (ids joined by spaces) and its reports.
    listed: Vec<(String, CallResult<Vec<ImageUsageReport>>)>,
    /// The reports chosen, by image, and the entries of each batch of them.
    chosen: BTreeMap<String, ImageUsageReport>,
    entries: Vec<(String, CallResult<Vec<ImageUsageReportEntry>>)>,
    /// AMIs with a report pending that would do once ready (create mode).
    pending: BTreeSet<String>,
    /// The reports asked for (create mode): AMI -> the new report's id.
    created: Vec<(String, CallResult<String>)>,
}

pub async fn fetch(
    ec2: &aws_sdk_ec2::Client,
    own: &[String],
    settings: UsageReportSettings,
    now: DateTime<Utc>,
) -> Fetched {
    let mut listed = Vec::new();
    // Create mode also lists pending reports, so none is asked for twice.
    let states: &[&str] = match settings.mode {
        UsageReports::Create => &["available", "pending"],
        _ => &["available"],
    };
    for batch in own.chunks(IDS_PER_CALL) {
        let state = Filter::builder()
            .name("state")
            .set_values(Some(states.iter().map(|s| s.to_string()).collect()))
            .build();
        let pages = ec2
            .describe_image_usage_reports()
            .set_image_ids(Some(batch.to_vec()))
            .filters(state)
            .into_paginator()
            .send();
        let outcome = all_pages(pages, |p| p.image_usage_reports.unwrap_or_default()).await;
        listed.push((batch.join(" "), outcome));
    }
    let oldest = now - Duration::days(i64::from(settings.max_age_days));
    let chosen = choose(&listed, oldest, "available");
    let pending = choose(&listed, oldest, "pending").into_keys().collect();
    let ids: Vec<String> = chosen
        .values()
        .filter_map(|r| r.report_id().map(str::to_string))
        .collect();
    let mut entries = Vec::new();
    for batch in ids.chunks(IDS_PER_CALL) {
        let pages = ec2
            .describe_image_usage_report_entries()
            .set_report_ids(Some(batch.to_vec()))
            .into_paginator()
            .send();
        let outcome = all_pages(pages, |p| p.image_usage_report_entries.unwrap_or_default()).await;
        entries.push((batch.join(" "), outcome));
    }
    Fetched {
        listed,
        chosen,
        entries,
        pending,
        created: Vec::new(),
    }
}

/// Create mode: asks EC2 for a report on each of `shared` (own AMIs that
/// other accounts may launch) that has neither a report taken nor one
/// pending, and whose listing answered. Never waits for one.
pub async fn create(
    ec2: &aws_sdk_ec2::Client,
    fetched: &mut Fetched,
    shared: Vec<String>,
    limit: usize,
    now: DateTime<Utc>,
) {
    let listed: BTreeSet<&str> = fetched
        .listed
        .iter()
        .filter(|(_, outcome)| outcome.is_ok())
        .flat_map(|(batch, _)| batch.split(' '))
        .collect();
    let wanted: Vec<String> = shared
        .into_iter()
        .filter(|id| listed.contains(id.as_str()))
        .filter(|id| !fetched.chosen.contains_key(id) && !fetched.pending.contains(id))
        .collect();
    // One token per AMI and day: a second scan that day makes no second report.
    let day = now.format("%Y%m%d").to_string();
    fetched.created = super::calls::each_bounded(wanted, limit, |id| {
        let token = format!("amiaudit-{id}-{day}");
        async move {
            let mut request = ec2
                .create_image_usage_report()
                .image_id(id)
                .client_token(token);
            for t in RESOURCE_TYPES {
                request = request.resource_types(
                    aws_sdk_ec2::types::ImageUsageResourceTypeRequest::builder()
                        .resource_type(t)
                        .build(),
                );
            }
            let out = request.send().await.map_err(|e| CallError::from_sdk(&e))?;
            Ok(out.report_id().unwrap_or_default().to_string())
        }
    })
    .await;
}

/// For each AMI asked, the newest report in `state` created at or after
/// `oldest` that names no accounts (every account) and covers both
/// resource types.
fn choose(
    listed: &[(String, CallResult<Vec<ImageUsageReport>>)],
    oldest: DateTime<Utc>,
    state: &str,
) -> BTreeMap<String, ImageUsageReport> {
    let mut chosen: BTreeMap<String, ImageUsageReport> = BTreeMap::new();
    for (batch, outcome) in listed {
        let Ok(reports) = outcome else { continue };
        let asked: BTreeSet<&str> = batch.split(' ').collect();
        for report in reports {
            let (Some(image), Some(_), Some(created)) =
                (report.image_id(), report.report_id(), created_at(report))
            else {
                continue;
            };
            let types: BTreeSet<&str> = report
                .resource_types()
                .iter()
                .filter_map(|t| t.resource_type())
                .collect();
            let usable = asked.contains(image)
                && report.state() == Some(state)
                && report.account_ids().is_empty()
                && RESOURCE_TYPES.iter().all(|t| types.contains(t))
                && created >= oldest;
            // The newest; between two made the same millisecond, the
            // greater id, so the answer's order never decides.
            let newer = chosen.get(image).is_none_or(|held| {
                (Some(created), report.report_id()) > (created_at(held), held.report_id())
            });
            if usable && newer {
                chosen.insert(image.to_string(), report.clone());
            }
        }
    }
    chosen
}

fn created_at(report: &ImageUsageReport) -> Option<DateTime<Utc>> {
    let t = report.creation_time()?;
    DateTime::from_timestamp_millis(t.to_millis().ok()?)
}

fn millis(t: Option<&aws_smithy_types::DateTime>) -> Option<Millis> {
    t.and_then(|t| t.to_millis().ok()).map(Millis)
}

/// Records the reports chosen and their entries; a failed listing or
/// entries call is a scan error, and what it would have said stays not
/// known (no row, or `entries_read` false).
pub fn rows(harvest: &mut Harvest, fetched: Fetched) {
    for (batch, outcome) in fetched.listed {
        harvest.take("ec2", "DescribeImageUsageReports", Some(&batch), outcome);
    }
    // A report asked for is read by a later scan; a refusal is a scan
    // error (the AMI's usage stays as the reads above found it).
    for (image, outcome) in fetched.created {
        harvest.take("ec2", "CreateImageUsageReport", Some(&image), outcome);
    }
    let mut read: BTreeSet<String> = BTreeSet::new();
    let mut found: Vec<ImageUsageReportEntry> = Vec::new();
    for (batch, outcome) in fetched.entries {
        let Some(entries) = harvest.take(
            "ec2",
            "DescribeImageUsageReportEntries",
            Some(&batch),
            outcome,
        ) else {
            continue;
        };
        // An entry that does not say whose use it counts leaves the
        // batch's answer incomplete: none of it is read.
        if entries
            .iter()
            .any(|e| e.report_id().is_none() || e.account_id().is_none())
        {
            harvest.fail(
                "ec2",
                "DescribeImageUsageReportEntries",
                Some(&batch),
                &CallError {
                    code: "IncompleteAnswer".to_string(),
                    message: "an entry named no report or no account".to_string(),
                },
            );
            continue;
        }
        read.extend(batch.split(' ').map(str::to_string));
        found.extend(entries);
    }
    let by_report: BTreeMap<&str, &str> = fetched
        .chosen
        .iter()
        .filter_map(|(image, r)| Some((r.report_id()?, image.as_str())))
        .collect();
    for entry in &found {
        // Only the reports asked about, for the image each reports on.
        let (Some(report), Some(user)) = (entry.report_id(), entry.account_id()) else {
            continue;
        };
        let Some(&image) = by_report.get(report) else {
            continue;
        };
        harvest.push(ImageUsageEntryRow {
            account_id: harvest.account_id.clone(),
            region: harvest.region.clone(),
            image_id: image.to_string(),
            report_id: report.to_string(),
            user_account_id: user.to_string(),
            resource_type: text(entry.resource_type()),
            usage_count: entry.usage_count(),
        });
    }
    for (image, report) in &fetched.chosen {
        let Some(id) = text(report.report_id()) else {
            continue;
        };
        harvest.push(ImageUsageReportRow {
            account_id: harvest.account_id.clone(),
            region: harvest.region.clone(),
            image_id: image.clone(),
            entries_read: read.contains(&id),
            report_id: id,
            creation_time: millis(report.creation_time()),
            expiration_time: millis(report.expiration_time()),
        });
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_ec2::types::ImageUsageResourceType;

    use super::*;

    fn report(
        image: &str,
        id: &str,
        days_ago: i64,
        accounts: &[&str],
        types: &[&str],
    ) -> ImageUsageReport {
        let now = Utc::now();
        let mut b = ImageUsageReport::builder()
            .image_id(image)
            .report_id(id)
            .state("available")
            .creation_time(aws_smithy_types::DateTime::from_millis(
                (now - Duration::days(days_ago)).timestamp_millis(),
            ));
        for a in accounts {
            b = b.account_ids(*a);
        }
        for t in types {
            b = b.resource_types(ImageUsageResourceType::builder().resource_type(*t).build());
        }
        b.build()
    }

    #[test]
    fn the_newest_fresh_full_report_is_chosen() {
        let both = ["ec2:Instance", "ec2:LaunchTemplate"];
        let listed = vec![(
            "ami-a ami-b ami-c ami-d".to_string(),
            Ok(vec![
                report("ami-a", "r-old", 5, &[], &both),
                report("ami-a", "r-new", 1, &[], &both),
                report("ami-b", "r-stale", 30, &[], &both),
                report("ami-c", "r-some-accounts", 1, &["222222222222"], &both),
                report("ami-d", "r-instances-only", 1, &[], &["ec2:Instance"]),
                // Not asked in this batch: not taken.
                report("ami-z", "r-other", 1, &[], &both),
            ]),
        )];
        let chosen = choose(&listed, Utc::now() - Duration::days(7), "available");
        let ids: Vec<(&str, &str)> = chosen
            .iter()
            .map(|(i, r)| (i.as_str(), r.report_id().unwrap()))
            .collect();
        assert_eq!(ids, vec![("ami-a", "r-new")]);

        // Two made the same millisecond: the greater id, whatever the
        // order of the answer.
        let at = aws_smithy_types::DateTime::from_millis(Utc::now().timestamp_millis());
        let same = |id: &str| {
            let mut r = report("ami-a", id, 0, &[], &both);
            r.creation_time = Some(at);
            r
        };
        for order in [
            vec![same("r-1"), same("r-2")],
            vec![same("r-2"), same("r-1")],
        ] {
            let chosen = choose(
                &[("ami-a".to_string(), Ok(order))],
                Utc::now() - Duration::days(7),
                "available",
            );
            assert_eq!(chosen["ami-a"].report_id(), Some("r-2"));
        }
    }

    #[test]
    fn entries_are_kept_for_the_reports_chosen_and_an_incomplete_answer_reads_none() {
        let region = crate::discover::RegionInfo {
            region: "eu-west-1".into(),
            opt_in_status: None,
        };
        let both = ["ec2:Instance", "ec2:LaunchTemplate"];
        let entry = |report: &str, account: Option<&str>| {
            ImageUsageReportEntry::builder()
                .report_id(report)
                .set_account_id(account.map(str::to_string))
                .resource_type("ec2:Instance")
                .usage_count(3)
                .build()
        };
        let fetched = |entries| Fetched {
            listed: vec![("ami-a".to_string(), Ok(vec![]))],
            chosen: BTreeMap::from([("ami-a".to_string(), report("ami-a", "r-1", 1, &[], &both))]),
            entries: vec![("r-1".to_string(), entries)],
            pending: BTreeSet::new(),
            created: Vec::new(),
        };
        let mut harvest = Harvest::new("111111111111", &region);
        rows(
            &mut harvest,
            fetched(Ok(vec![
                entry("r-1", Some("222222222222")),
                entry("r-other", Some("333333333333")),
            ])),
        );
        let tables: Vec<&str> = harvest.rows.iter().map(|(t, _)| *t).collect();
        assert_eq!(tables, vec!["image_usage_entries", "image_usage_reports"]);
        assert_eq!(harvest.rows[1].1[6], crate::inventory::Value::Bool(true));

        let mut incomplete = Harvest::new("111111111111", &region);
        rows(&mut incomplete, fetched(Ok(vec![entry("r-1", None)])));
        let tables: Vec<&str> = incomplete.rows.iter().map(|(t, _)| *t).collect();
        assert_eq!(tables, vec!["image_usage_reports"]);
        assert_eq!(
            incomplete.rows[0].1[6],
            crate::inventory::Value::Bool(false)
        );
        assert_eq!(incomplete.errors.len(), 1);
    }
}
