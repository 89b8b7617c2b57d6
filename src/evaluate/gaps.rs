//! Where a rule cannot see, and what that does to its results: the same
//! for every rule, from the rule's evidence and the inventory's coverage.

#![allow(
    clippy::indexing_slicing,
    reason = "columnar loops: every column of a table has the table's height, and each index is a row of that table"
)]

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use polars::prelude::*;
use rustc_hash::FxHashMap;

use super::order::{insert_sorted, is_sorted, sort_results};
use super::{RESULT_COLUMNS, Status};
use crate::error::polars_message;
use crate::inventory::{Coverage as InventoryCoverage, Inventory, ScanStatus};
use crate::policy::{Evidence, Rule};

/// A resource's row in an inventory table: account, region, resource id.
type RowKey<'a> = (&'a str, &'a str, &'a str);

/// Where a rule cannot see: account-regions (and single resources) whose data is missing.
pub(super) struct Gaps<'a> {
    /// (account_id, region) -> reason
    regions: BTreeMap<(String, String), String>,
    /// (account_id, region, resource_id) -> reason
    resources: BTreeMap<(String, String, String), String>,
    /// Facts of a resource's own row that are not known: resource type ->
    /// row -> index into `fact_reasons`. Only a `pass` needs them all: a
    /// `fail` stands on the facts that prove it. Keys borrow the inventory:
    /// a million unknown facts cost no allocation each.
    unknown_facts: HashMap<&'a str, FxHashMap<RowKey<'a>, usize>>,
    fact_reasons: Vec<String>,
}

/// The coverage facts every rule's gaps are made from.
pub(super) struct Coverage<'a> {
    inventory: &'a Inventory,
    coverage: &'a InventoryCoverage,
    pub(super) skipped: BTreeSet<(String, String)>,
    unseen: BTreeMap<(String, String), String>,
}

impl<'a> Coverage<'a> {
    pub(super) fn read(inventory: &'a Inventory) -> Coverage<'a> {
        let coverage = inventory.coverage();
        Coverage {
            inventory,
            coverage,
            skipped: coverage.skipped().cloned().collect(),
            unseen: coverage
                .unseen()
                .map(|(k, why)| (k.clone(), why.to_string()))
                .collect(),
        }
    }

    pub(super) fn gaps_for(&self, rule: &Rule) -> Result<Gaps<'a>, String> {
        let mut gaps = Gaps {
            regions: self.unseen.clone(),
            resources: BTreeMap::new(),
            unknown_facts: HashMap::new(),
            fact_reasons: Vec::new(),
        };
        // Calls this inventory never made (it predates them): blind everywhere.
        let never: Vec<&str> = rule
            .calls()
            .filter(|op| {
                self.coverage
                    .not_collected
                    .contains(&op.to_ascii_lowercase())
            })
            .collect();
        if let Some(op) = never.first() {
            let why = format!(
                "{op} was not collected by this inventory (schema version {})",
                self.coverage.written_with
            );
            for (key, (status, _)) in &self.coverage.regions {
                if *status != ScanStatus::NotOptedIn {
                    gaps.regions
                        .entry(key.clone())
                        .or_insert_with(|| why.clone());
                }
            }
        }
        self.add_failed_calls(rule, &mut gaps);
        let settings: Vec<String> = self
            .inventory
            .manifest()
            .settings
            .iter()
            .map(|(k, v)| format!("{k} = {v}"))
            .collect();
        for fact in &rule.evidence {
            let Evidence::Column { table, column } = fact else {
                continue;
            };
            let inventory: &'a Inventory = self.inventory;
            let df = inventory.table(table.name).map_err(|e| e.to_string())?;
            let text =
                |name: &str| crate::inventory::str_column(df, name).map_err(|e| e.to_string());
            let (account, region, id) = (
                text("account_id")?,
                text("region")?,
                text(table.resource_id)?,
            );
            let nulls = df.column(column).map_err(|e| polars_message(&e))?.is_null();
            let mut why = format!("`{fact}` is not known for this {}", table.resource_type);
            if !settings.is_empty() {
                why.push_str(&format!(" (scan settings: {})", settings.join(", ")));
            }
            let reason = gaps.fact_reasons.len();
            gaps.fact_reasons.push(why);
            let missing = gaps.unknown_facts.entry(table.resource_type).or_default();
            for (i, null) in nulls.iter().enumerate() {
                if null == Some(true) {
                    missing
                        .entry((
                            account[i].unwrap_or_default(),
                            region[i].unwrap_or_default(),
                            id[i].unwrap_or_default(),
                        ))
                        .or_insert(reason);
                }
            }
        }
        Ok(gaps)
    }

    /// The account-regions and resources where a call the rule needs
    /// failed (a region not opted in is out of scope, not a gap).
    fn add_failed_calls(&self, rule: &Rule, gaps: &mut Gaps<'a>) {
        let needs = |op: &str| rule.calls().any(|r| r.eq_ignore_ascii_case(op));
        for e in self
            .coverage
            .failed_calls
            .iter()
            .filter(|e| needs(&e.operation))
        {
            let reason = format!("{} failed ({})", e.operation, e.error_code);
            let regions: Vec<String> = match &e.region {
                Some(r) => vec![r.clone()],
                None => self
                    .coverage
                    .regions_of(&e.account_id)
                    .map(str::to_string)
                    .collect(),
            };
            for region in regions {
                // A region that is not opted in is out of scope, not a gap.
                if self
                    .skipped
                    .contains(&(e.account_id.clone(), region.clone()))
                {
                    continue;
                }
                match &e.resource_id {
                    Some(resource) => {
                        gaps.resources
                            .entry((e.account_id.clone(), region, resource.clone()))
                            .or_insert_with(|| reason.clone());
                    }
                    None => {
                        gaps.regions
                            .entry((e.account_id.clone(), region))
                            .or_insert_with(|| reason.clone());
                    }
                }
            }
        }
    }
}

/// The gap sets keyed by borrowed strings, for lookups per row.
#[allow(
    clippy::type_complexity,
    reason = "three lookups built together and read together"
)]
fn lookups<'g>(
    gaps: &'g Gaps<'_>,
    skipped: &'g BTreeSet<(String, String)>,
) -> (
    HashMap<(&'g str, &'g str), &'g str>,
    HashMap<(&'g str, &'g str, &'g str), &'g str>,
    HashSet<(&'g str, &'g str)>,
) {
    let regions = gaps
        .regions
        .iter()
        .map(|((a, r), why)| ((a.as_str(), r.as_str()), why.as_str()))
        .collect();
    let resources = gaps
        .resources
        .iter()
        .map(|((a, r, id), why)| ((a.as_str(), r.as_str(), id.as_str()), why.as_str()))
        .collect();
    let skipped = skipped
        .iter()
        .map(|(a, r)| (a.as_str(), r.as_str()))
        .collect();
    (regions, resources, skipped)
}

/// One `unknown` row for each account-region the rule could not see and
/// produced no row in at all (`seen`: where it did), in results order.
fn add_blind(
    mut df: DataFrame,
    gaps: &Gaps<'_>,
    seen: &HashSet<(&str, &str)>,
) -> PolarsResult<DataFrame> {
    let blind: Vec<(&(String, String), &String)> = gaps
        .regions
        .iter()
        .filter(|((a, r), _)| !seen.contains(&(a.as_str(), r.as_str())))
        .collect();
    if !blind.is_empty() {
        let n = blind.len();
        let placeholders = df!(
            "account_id" => blind.iter().map(|((a, _), _)| a.as_str()).collect::<Vec<_>>(),
            "region" => blind.iter().map(|((_, r), _)| r.as_str()).collect::<Vec<_>>(),
            "resource_id" => blind.iter().map(|((_, r), _)| r.as_str()).collect::<Vec<_>>(),
            "resource_name" => vec![""; n],
            "status" => vec![Status::Unknown.as_str(); n],
            "reason" => blind.iter().map(|(_, why)| why.as_str()).collect::<Vec<_>>(),
            "resource_type" => vec!["account-region"; n],
        )?;
        let placeholders = placeholders.select(df.get_column_names_owned())?;
        df = if is_sorted(&df)? {
            insert_sorted(df, &placeholders)?
        } else {
            df.vstack_mut_owned(placeholders)?;
            df
        };
    }
    Ok(df)
}

/// Marks results `unknown` where the rule could not see, drops results in
/// regions that are not opted in, adds one `unknown` row per blind
/// account-region the rule saw nothing in, and sorts. Done over the columns
/// in Rust: the gap sets are small, and joins would copy every column.
pub(super) fn apply_coverage(
    raw: DataFrame,
    gaps: &Gaps<'_>,
    skipped: &BTreeSet<(String, String)>,
    rule: &Rule,
) -> PolarsResult<DataFrame> {
    let height = raw.height();
    let text = |name: &str| -> PolarsResult<Vec<Option<&str>>> {
        Ok(raw.column(name)?.str()?.iter().collect())
    };
    let account = text("account_id")?;
    let region = text("region")?;
    let resource = text("resource_id")?;
    let kinds = text("resource_type")?;
    let mut status = text("status")?;
    let mut reason = text("reason")?;
    let (region_gaps, resource_gaps, skipped) = lookups(gaps, skipped);
    let mut keep: Vec<bool> = Vec::new();
    let mut seen: HashSet<(&str, &str)> = Default::default();
    let mut changed = false;
    let nothing_to_do = gaps.regions.is_empty()
        && gaps.resources.is_empty()
        && skipped.is_empty()
        && gaps.unknown_facts.values().all(|m| m.is_empty());
    // Rows come grouped by account-region (inventory order), so the
    // account-region lookups are made once per run of equal keys, not per row.
    let mut run: Option<(&str, &str)> = None;
    let (mut run_skipped, mut run_gap): (bool, Option<&str>) = (false, None);
    for i in 0..height {
        if status[i].is_none() {
            status[i] = Some(Status::Unknown.as_str());
            // The query's own reason says which fact was missing.
            if reason[i].is_none_or(str::is_empty) {
                reason[i] = Some("needed data is missing");
            }
            changed = true;
        }
        if reason[i].is_none() {
            reason[i] = Some("");
            changed = true;
        }
        if nothing_to_do {
            continue;
        }
        let (a, r) = (account[i].unwrap_or(""), region[i].unwrap_or(""));
        if run != Some((a, r)) {
            run = Some((a, r));
            seen.insert((a, r));
            run_skipped = skipped.contains(&(a, r));
            run_gap = region_gaps.get(&(a, r)).copied();
        }
        if run_skipped {
            if keep.is_empty() {
                keep = vec![true; height];
            }
            keep[i] = false;
            continue;
        }
        let gap = run_gap.or_else(|| {
            if resource_gaps.is_empty() {
                return None;
            }
            resource[i].and_then(|id| resource_gaps.get(&(a, r, id)).copied())
        });
        if let Some(why) = gap {
            status[i] = Some(Status::Unknown.as_str());
            reason[i] = Some(why);
            changed = true;
        } else if status[i] == Some(Status::Pass.as_str())
            && let Some(why) = kinds[i]
                .and_then(|k| gaps.unknown_facts.get(k))
                .and_then(|m| m.get(&(a, r, resource[i].unwrap_or(""))))
                .and_then(|&reason| gaps.fact_reasons.get(reason))
        {
            status[i] = Some(Status::Unknown.as_str());
            reason[i] = Some(why);
            changed = true;
        }
    }
    let mut df = raw.clone();
    if changed {
        df.with_column(Column::new("status".into(), status.clone()))?;
        df.with_column(Column::new("reason".into(), reason.clone()))?;
    }
    if !keep.is_empty() {
        df = df.filter(&BooleanChunked::from_slice("keep".into(), &keep))?;
    }
    let mut df = add_blind(df, gaps, &seen)?;
    df.with_column(Column::new_scalar(
        "rule_id".into(),
        Scalar::from(PlSmallStr::from(rule.id.as_str())),
        df.height(),
    ))?;
    let df = df.select(RESULT_COLUMNS)?;
    sort_results(df)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// Every result row as text, a missing cell as `<null>`.
    fn rows_of(df: &DataFrame) -> Vec<Vec<String>> {
        crate::inventory::text_rows(df, RESULT_COLUMNS)
            .unwrap()
            .map(|row| {
                row.iter()
                    .map(|cell| cell.unwrap_or("<null>").to_string())
                    .collect()
            })
            .collect()
    }

    /// Rows out of order, a region not opted in (with a status no rule may
    /// give, which is dropped, not refused), a blind region with rows and
    /// two without, a failed call on one resource, a fact not known and a
    /// null status: what reports read, row by row, whichever order the
    /// query gave.
    #[test]
    fn coverage_marks_drops_and_places_blind_rows_in_results_order() {
        let pack = crate::policy::load_builtin().unwrap();
        let rule = &pack.rules[0];
        let s = |v: &str| v.to_string();
        let gaps = Gaps {
            regions: BTreeMap::from([
                ((s("111"), s("ap-south-1")), s("blind: not scanned")),
                (
                    (s("111"), s("us-east-1")),
                    s("DescribeImages failed (Throttling)"),
                ),
                ((s("444"), s("us-east-1")), s("blind: not scanned")),
            ]),
            resources: BTreeMap::from([(
                (s("222"), s("us-east-1"), s("i-9")),
                s("DescribeImageAttribute failed (Boom)"),
            )]),
            unknown_facts: HashMap::from([(
                "instance",
                FxHashMap::from_iter([(("222", "us-east-1", "i-2"), 0)]),
            )]),
            fact_reasons: vec![s("`instances.x` is not known for this instance")],
        };
        let skipped = BTreeSet::from([(s("333"), s("us-east-1"))]);
        let raw = |order: &[usize]| {
            // account_id, region, resource_id, status, reason
            let all = [
                [
                    Some("222"),
                    Some("us-east-1"),
                    Some("i-2"),
                    Some("pass"),
                    Some(""),
                ],
                [
                    Some("111"),
                    Some("us-east-1"),
                    Some("i-1"),
                    Some("fail"),
                    Some("bad"),
                ],
                [Some("111"), Some("eu-west-1"), Some("i-0"), None, None],
                [
                    Some("333"),
                    Some("us-east-1"),
                    Some("i-3"),
                    Some("bogus"),
                    Some(""),
                ],
                [
                    Some("222"),
                    Some("us-east-1"),
                    Some("i-9"),
                    Some("pass"),
                    Some(""),
                ],
                [
                    Some("222"),
                    Some("us-east-1"),
                    Some("i-8"),
                    Some("fail"),
                    None,
                ],
            ];
            let pick: Vec<_> = order.iter().map(|&i| all[i]).collect();
            let n = pick.len();
            let names = ["account_id", "region", "resource_id", "status", "reason"];
            let mut columns: Vec<Column> = names
                .iter()
                .enumerate()
                .map(|(k, name)| {
                    Column::new(
                        (*name).into(),
                        pick.iter().map(|r| r[k]).collect::<Vec<_>>(),
                    )
                })
                .collect();
            columns.push(Column::new(
                "resource_name".into(),
                pick.iter()
                    .map(|r| r[2].map(|id| format!("name-{id}")))
                    .collect::<Vec<_>>(),
            ));
            columns.push(Column::new_scalar(
                "resource_type".into(),
                Scalar::from(PlSmallStr::from("instance")),
                n,
            ));
            DataFrame::new(n, columns).unwrap()
        };
        let row = |cells: [&str; 7]| {
            std::iter::once(rule.id.clone())
                .chain(cells.iter().map(|c| c.to_string()))
                .collect::<Vec<_>>()
        };
        let expected = vec![
            row([
                "111",
                "ap-south-1",
                "account-region",
                "ap-south-1",
                "",
                "unknown",
                "blind: not scanned",
            ]),
            row([
                "111",
                "eu-west-1",
                "instance",
                "i-0",
                "name-i-0",
                "unknown",
                "needed data is missing",
            ]),
            row([
                "111",
                "us-east-1",
                "instance",
                "i-1",
                "name-i-1",
                "unknown",
                "DescribeImages failed (Throttling)",
            ]),
            row([
                "222",
                "us-east-1",
                "instance",
                "i-2",
                "name-i-2",
                "unknown",
                "`instances.x` is not known for this instance",
            ]),
            row([
                "222",
                "us-east-1",
                "instance",
                "i-8",
                "name-i-8",
                "fail",
                "",
            ]),
            row([
                "222",
                "us-east-1",
                "instance",
                "i-9",
                "name-i-9",
                "unknown",
                "DescribeImageAttribute failed (Boom)",
            ]),
            row([
                "444",
                "us-east-1",
                "account-region",
                "us-east-1",
                "",
                "unknown",
                "blind: not scanned",
            ]),
        ];
        // What evaluation does with a rule's rows after its query.
        let judged = |raw: DataFrame| -> Result<DataFrame, String> {
            let df = apply_coverage(raw, &gaps, &skipped, rule).map_err(|e| polars_message(&e))?;
            super::super::check_statuses(&df)?;
            Ok(df)
        };
        for order in [[0, 1, 2, 3, 4, 5], [2, 1, 0, 5, 4, 3], [3, 5, 4, 0, 1, 2]] {
            let df = judged(raw(&order)).unwrap();
            assert_eq!(rows_of(&df), expected, "query order {order:?}");
        }
        // A status no rule may give, in a row that is kept, is the rule's error.
        let mut bad = raw(&[0, 2]);
        bad.with_column(Column::new("status".into(), ["pass", "failed"]))
            .unwrap();
        let err = judged(bad).unwrap_err();
        assert!(err.contains("query returned status `failed`"), "{err}");
    }
}
