//! Runs every rule's SQL over the inventory tables and produces one result
//! row per rule x resource.
//!
//! **Architecture invariant:** evaluation does no I/O and never reads the
//! clock; "now" is the inventory's `collected_at`. Rules run in parallel over
//! the same in-memory tables. A rule that fails is reported in
//! [`Evaluation::rule_errors`] and the other rules carry on.
//!
//! Coverage is applied here, the same way for every rule, from the rule's
//! `evidence`: where an account-region was not scanned, or a call the rule
//! needs failed or was never made, results become `unknown` (and an
//! account-region where the rule saw nothing gets one `unknown` row); where
//! a column of a resource's own row that the rule needs is not known, a
//! `pass` there becomes `unknown`. A gap never reads as `pass`.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use polars::prelude::*;
use polars::sql::SQLContext;
use rayon::prelude::*;

use crate::error::polars_message;
use crate::inventory::{Coverage as InventoryCoverage, Inventory, ScanStatus};
use crate::policy::{Evidence, ParamOverrides, Rule};


/// The status of one result: the only vocabulary of the results frame's
/// `status` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Fail,
    Unknown,
    Waived,
    Pass,
}

impl Status {
    pub const ALL: [Status; 4] = [Status::Fail, Status::Unknown, Status::Waived, Status::Pass];

    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|v| v.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Fail => "fail",
            Status::Unknown => "unknown",
            Status::Waived => "waived",
            Status::Pass => "pass",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Columns of the results frame, in order.
pub const RESULT_COLUMNS: [&str; 8] = [
    "rule_id",
    "account_id",
    "region",
    "resource_type",
    "resource_id",
    "resource_name",
    "status",
    "reason",
];

/// Columns every rule query must return.
pub const QUERY_COLUMNS: [&str; 6] = [
    "account_id",
    "region",
    "resource_id",
    "resource_name",
    "status",
    "reason",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    pub rule_id: String,
    pub file: String,
    pub message: String,
}

impl std::fmt::Display for RuleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: rule `{}`: {}",
            self.file, self.rule_id, self.message
        )
    }
}

#[derive(Debug, Clone)]
pub struct Evaluation {
    /// One row per rule x resource, columns [`RESULT_COLUMNS`], sorted by
    /// rule (in pack order), account, region, resource.
    pub results: DataFrame,
    pub rule_errors: Vec<RuleError>,
}

/// Where a rule cannot see: account-regions (and single resources) whose data is missing.
struct Gaps {
    /// (account_id, region) -> reason
    regions: BTreeMap<(String, String), String>,
    /// (account_id, region, resource_id) -> reason
    resources: BTreeMap<(String, String, String), String>,
    /// Facts of a resource's own row that are not known: resource type ->
    /// (account_id, region, resource_id) -> reason. Only a `pass` needs them
    /// all: a `fail` stands on the facts that prove it.
    unknown_facts: HashMap<String, HashMap<(String, String, String), String>>,
}

/// The coverage facts every rule's gaps are made from.
struct Coverage<'a> {
    inventory: &'a Inventory,
    coverage: &'a InventoryCoverage,
    skipped: BTreeSet<(String, String)>,
    unseen: BTreeMap<(String, String), String>,
}

impl<'a> Coverage<'a> {
    fn read(inventory: &'a Inventory) -> Coverage<'a> {
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

    fn gaps_for(&self, rule: &Rule) -> Result<Gaps, String> {
        let mut gaps = Gaps {
            regions: self.unseen.clone(),
            resources: BTreeMap::new(),
            unknown_facts: HashMap::new(),
        };
        let needs = |op: &str| rule.calls().any(|r| r.eq_ignore_ascii_case(op));
        // Calls this inventory never made (it predates them): blind everywhere.
        let never: Vec<&str> = rule
            .calls()
            .filter(|op| self.coverage.not_collected.contains(&op.to_ascii_lowercase()))
            .collect();
        if let Some(op) = never.first() {
            let why = format!(
                "{op} was not collected by this inventory (schema version {})",
                self.coverage.written_with
            );
            for (key, (status, _)) in &self.coverage.regions {
                if *status != ScanStatus::NotOptedIn {
                    gaps.regions.entry(key.clone()).or_insert_with(|| why.clone());
                }
            }
        }
        for e in self.coverage.failed_calls.iter().filter(|e| needs(&e.operation)) {
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
            let df = self.inventory.table(table.name).map_err(|e| e.to_string())?;
            let text = |name: &str| crate::inventory::str_column(df, name).map_err(|e| e.to_string());
            let (account, region, id) = (text("account_id")?, text("region")?, text(table.resource_id)?);
            let nulls = df
                .column(column)
                .map_err(|e| polars_message(&e))?
                .is_null();
            let mut why = format!("`{fact}` is not known for this {}", table.resource_type);
            if !settings.is_empty() {
                why.push_str(&format!(" (scan settings: {})", settings.join(", ")));
            }
            let missing = gaps.unknown_facts.entry(table.resource_type.to_string()).or_default();
            for (i, null) in nulls.iter().enumerate() {
                if null == Some(true) {
                    missing
                        .entry((
                            account[i].unwrap_or_default().to_string(),
                            region[i].unwrap_or_default().to_string(),
                            id[i].unwrap_or_default().to_string(),
                        ))
                        .or_insert_with(|| why.clone());
                }
            }
        }
        Ok(gaps)
    }
}

/// Evaluates every rule. Never fails as a whole: a rule that cannot run
/// (bad SQL, or a failure inside polars) becomes a [`RuleError`].
pub fn evaluate(inventory: &Inventory, rules: &[Rule], overrides: &ParamOverrides) -> Evaluation {
    let coverage = Coverage::read(inventory);
    let frames = inventory.frames();
    // Rules side by side: many queries are short and leave cores idle.
    let outcomes: Vec<Result<DataFrame, RuleError>> = rules
        .par_iter()
        .map(|rule| {
            let run = || -> Result<DataFrame, String> {
                let frames = frames.as_ref().map_err(|e| e.to_string())?;
                evaluate_rule(rule, frames, &coverage, overrides)
            };
            // polars panics on some inputs it should refuse; one rule's
            // crash is that rule's error, never the audit's.
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(run))
                .unwrap_or_else(|panic| {
                    Err(format!(
                        "the query engine failed: {}",
                        crate::error::panic_message(panic.as_ref())
                    ))
                })
                .map_err(|message| RuleError {
                    rule_id: rule.id.clone(),
                    file: rule.source.clone(),
                    message,
                })
        })
        .collect();
    let mut frames_out = Vec::new();
    let mut rule_errors = Vec::new();
    for outcome in outcomes {
        match outcome {
            Ok(df) => frames_out.push(df),
            Err(e) => rule_errors.push(e),
        }
    }
    let mut results = empty_results();
    // Chunks are kept as they are: rechunking 20M rows of strings costs
    // seconds and memory, and every reader iterates chunk-wise anyway.
    for df in frames_out {
        if let Err(e) = results.vstack_mut_owned(df) {
            rule_errors.push(RuleError {
                rule_id: String::new(),
                file: "evaluate".to_string(),
                message: format!("cannot collect results: {}", polars_message(&e)),
            });
        }
    }
    Evaluation {
        results,
        rule_errors,
    }
}

pub fn empty_results() -> DataFrame {
    DataFrame::empty_with_schema(&Schema::from_iter(
        RESULT_COLUMNS
            .iter()
            .map(|n| Field::new(PlSmallStr::from_static(n), DataType::String)),
    ))
}

fn evaluate_rule(
    rule: &Rule,
    frames: &BTreeMap<String, LazyFrame>,
    coverage: &Coverage,
    overrides: &ParamOverrides,
) -> Result<DataFrame, String> {
    let sql = rule.sql(overrides).map_err(|e| match e {
        crate::error::Error::Rule { message, .. } => message,
        other => other.to_string(),
    })?;
    let mut ctx = SQLContext::new();
    for (name, lf) in frames {
        ctx.register(name, lf.clone());
    }
    let mut lf = ctx
        .execute(&sql)
        .map_err(|e| format!("SQL error: {}", polars_message(&e)))?;
    // A query may name each row's resource type (a rule over instances and
    // launch templates); otherwise every row is of the rule's resource type.
    let schema = lf
        .collect_schema()
        .map_err(|e| format!("SQL error: {}", polars_message(&e)))?;
    let resource_type = if schema.contains("resource_type") {
        col("resource_type")
            .cast(DataType::String)
            .fill_null(lit(rule.resource_type.as_str()))
    } else {
        lit(rule.resource_type.as_str())
    };
    let raw = lf
        .select(
            QUERY_COLUMNS
                .iter()
                .map(|c| col(*c).cast(DataType::String))
                .chain([resource_type.alias("resource_type")])
                .collect::<Vec<_>>(),
        )
        .collect()
        .map_err(|e| {
            let msg = polars_message(&e);
            if msg.contains("not found") && QUERY_COLUMNS.iter().any(|c| msg.contains(c)) {
                format!(
                    "query must return the columns {} ({msg})",
                    QUERY_COLUMNS.join(", ")
                )
            } else {
                format!("SQL error: {msg}")
            }
        })?;
    let gaps = coverage.gaps_for(rule)?;
    let result =
        apply_coverage(raw, &gaps, &coverage.skipped, rule).map_err(|e| polars_message(&e))?;
    check_statuses(&result)?;
    Ok(result)
}

fn check_statuses(df: &DataFrame) -> Result<(), String> {
    let statuses = df.column("status").map_err(|e| polars_message(&e))?;
    let statuses = statuses.str().map_err(|e| polars_message(&e))?;
    for s in statuses.iter().flatten() {
        if !matches!(
            Status::parse(s),
            Some(Status::Pass | Status::Fail | Status::Unknown)
        ) {
            return Err(format!(
                "query returned status `{s}`; a rule's status must be pass, fail or unknown"
            ));
        }
    }
    Ok(())
}

/// Marks results `unknown` where the rule could not see, drops results in
/// regions that are not opted in, adds one `unknown` row per blind
/// account-region the rule saw nothing in, and sorts. Done over the columns
/// in Rust: the gap sets are small, and joins would copy every column.
fn apply_coverage(
    raw: DataFrame,
    gaps: &Gaps,
    skipped: &std::collections::BTreeSet<(String, String)>,
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
    let fact_gaps: HashMap<&str, HashMap<(&str, &str, &str), &str>> = gaps
        .unknown_facts
        .iter()
        .map(|(kind, missing)| {
            (
                kind.as_str(),
                missing
                    .iter()
                    .map(|((a, r, id), why)| ((a.as_str(), r.as_str(), id.as_str()), why.as_str()))
                    .collect(),
            )
        })
        .collect();

    let region_gaps: std::collections::HashMap<(&str, &str), &str> = gaps
        .regions
        .iter()
        .map(|((a, r), why)| ((a.as_str(), r.as_str()), why.as_str()))
        .collect();
    let resource_gaps: std::collections::HashMap<(&str, &str, &str), &str> = gaps
        .resources
        .iter()
        .map(|((a, r, id), why)| ((a.as_str(), r.as_str(), id.as_str()), why.as_str()))
        .collect();
    let skipped: std::collections::HashSet<(&str, &str)> = skipped
        .iter()
        .map(|(a, r)| (a.as_str(), r.as_str()))
        .collect();
    let mut keep: Vec<bool> = Vec::new();
    let mut seen: std::collections::HashSet<(&str, &str)> = Default::default();
    let mut changed = false;
    let nothing_to_do = gaps.regions.is_empty()
        && gaps.resources.is_empty()
        && skipped.is_empty()
        && fact_gaps.values().all(HashMap::is_empty);
    // Rows come grouped by account-region (inventory order), so the
    // account-region lookups are made once per run of equal keys, not per row.
    let mut run: Option<(&str, &str)> = None;
    let (mut run_skipped, mut run_gap): (bool, Option<&str>) = (false, None);
    for i in 0..height {
        if status[i].is_none() {
            status[i] = Some(Status::Unknown.as_str());
            reason[i] = Some("needed data is missing");
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
                .and_then(|k| fact_gaps.get(k))
                .and_then(|m| m.get(&(a, r, resource[i].unwrap_or(""))))
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
    // An account-region the rule could not see, where it produced no row at all.
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
    df.with_column(Column::new_scalar(
        "rule_id".into(),
        Scalar::from(PlSmallStr::from(rule.id.as_str())),
        df.height(),
    ))?;
    let df = df.select(RESULT_COLUMNS)?;
    sort_results(df)
}

/// Sorts by account, region, resource: the order every report uses.
/// Most queries already return rows in inventory order, which is sorted;
/// checking that is one linear pass, far cheaper than a stable
/// multi-column sort of millions of strings.
fn sort_results(df: DataFrame) -> PolarsResult<DataFrame> {
    if is_sorted(&df)? {
        return Ok(df);
    }
    df.sort(
        ["account_id", "region", "resource_id"],
        SortMultipleOptions::default()
            .with_nulls_last(true)
            .with_maintain_order(true),
    )
}

/// Inserts `extra` (sorted, with account-regions that `df` has no row in)
/// into the sorted `df` where they belong, by slicing instead of sorting.
fn insert_sorted(df: DataFrame, extra: &DataFrame) -> PolarsResult<DataFrame> {
    fn rank(v: Option<&str>) -> (bool, &str) {
        (v.is_none(), v.unwrap_or(""))
    }
    let account = df.column("account_id")?.str()?.clone();
    let region = df.column("region")?.str()?.clone();
    let extra_account = extra.column("account_id")?.str()?.clone();
    let extra_region = extra.column("region")?.str()?.clone();
    let keys: Vec<_> = account.iter().zip(region.iter()).collect();
    let mut out = df.clear();
    let (mut start, mut i) = (0usize, 0usize);
    for (j, (a, r)) in extra_account.iter().zip(extra_region.iter()).enumerate() {
        let key = (rank(a), rank(r));
        while i < keys.len() && (rank(keys[i].0), rank(keys[i].1)) < key {
            i += 1;
        }
        out.vstack_mut_owned(df.slice(start as i64, i - start))?;
        out.vstack_mut_owned(extra.slice(j as i64, 1))?;
        start = i;
    }
    out.vstack_mut_owned(df.slice(start as i64, keys.len() - start))?;
    Ok(out)
}

/// Whether rows are already in (account_id, region, resource_id) order,
/// nulls last, as `sort_results` would put them.
fn is_sorted(df: &DataFrame) -> PolarsResult<bool> {
    let key = |name: &str| -> PolarsResult<StringChunked> { Ok(df.column(name)?.str()?.clone()) };
    let (account, region, resource) = (key("account_id")?, key("region")?, key("resource_id")?);
    // Nulls sort last: map None above every string.
    fn rank(v: Option<&str>) -> (bool, &str) {
        (v.is_none(), v.unwrap_or(""))
    }
    let mut previous: Option<((bool, &str), (bool, &str), (bool, &str))> = None;
    for ((a, r), id) in account.iter().zip(region.iter()).zip(resource.iter()) {
        let current = (rank(a), rank(r), rank(id));
        if previous.is_some_and(|p| p > current) {
            return Ok(false);
        }
        previous = Some(current);
    }
    Ok(true)
}
