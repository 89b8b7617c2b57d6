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

mod categories;
mod gaps;
mod judge;
mod order;
mod reasons;

use std::collections::BTreeMap;

use polars::prelude::*;
use polars::sql::SQLContext;

use crate::error::polars_message;
use crate::inventory::Inventory;
use crate::policy::{ParamOverrides, Rule};
use gaps::Coverage;
use judge::apply_coverage;

pub use categories::{CATEGORY_COLUMNS, ResultCategories, as_categories};

pub use crate::status::Status;

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
    /// rule (in pack order), account, region, resource. The
    /// [`CATEGORY_COLUMNS`] are categories, the rest text: read them with
    /// `inventory::text_rows` and its kin, which give both as `&str`.
    pub results: DataFrame,
    pub rule_errors: Vec<RuleError>,
}

/// Evaluates every rule. Never fails as a whole: a rule that cannot run
/// (bad SQL, or a failure inside polars) becomes a [`RuleError`].
pub fn evaluate(inventory: &Inventory, rules: &[Rule], overrides: &ParamOverrides) -> Evaluation {
    let coverage = Coverage::read(inventory);
    let frames = inventory.frames();
    let categories = ResultCategories::new(rules.len());
    let judge = |rule: &Rule| -> Result<DataFrame, RuleError> {
        let run = || -> Result<DataFrame, String> {
            let frames = frames.as_ref().map_err(|e| e.to_string())?;
            evaluate_rule(rule, inventory, frames, &coverage, overrides, &categories)
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
    };
    let outcomes = judge_side_by_side(rules, judge);
    let mut frames_out = Vec::new();
    let mut rule_errors = Vec::new();
    for outcome in outcomes {
        match outcome {
            Ok(df) => frames_out.push(df),
            Err(e) => rule_errors.push(e),
        }
    }
    let mut results = empty_results_of(&categories);
    // Chunks are kept as they are: rechunking 20M rows (two columns of
    // them text) costs seconds and memory, and every reader iterates
    // chunk-wise anyway.
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

/// Results with no rows, of the types an evaluation gives.
pub fn empty_results() -> DataFrame {
    empty_results_of(&ResultCategories::new(0))
}

fn empty_results_of(categories: &ResultCategories) -> DataFrame {
    DataFrame::empty_with_schema(&Schema::from_iter(RESULT_COLUMNS.iter().map(|n| {
        let dtype = categories.of(n).cloned().unwrap_or(DataType::String);
        Field::new(PlSmallStr::from_static(n), dtype)
    })))
}

fn evaluate_rule(
    rule: &Rule,
    inventory: &Inventory,
    frames: &BTreeMap<String, LazyFrame>,
    coverage: &Coverage,
    overrides: &ParamOverrides,
    categories: &ResultCategories,
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
    let select = |lf: LazyFrame| {
        lf.select(
            QUERY_COLUMNS
                .iter()
                .map(|c| col(*c).cast(DataType::String))
                .chain([resource_type.clone().alias("resource_type")])
                .collect::<Vec<_>>(),
        )
    };
    let collected = match reasons::collect_split(&lf, &select) {
        Some(split) => split.map(|(rows, reasons)| (rows, Some(reasons))),
        None => select(lf).collect().map(|rows| (rows, None)),
    };
    let (raw, reasons) = collected.map_err(|e| {
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
    let own = own_text(inventory, rule).map_err(|e| polars_message(&e))?;
    apply_coverage(
        raw,
        reasons,
        &gaps,
        &coverage.skipped,
        rule,
        categories,
        own,
    )
}

/// The resource id and name columns of the rule's table, if it has one.
fn own_text<'i>(inventory: &'i Inventory, rule: &Rule) -> PolarsResult<Option<[&'i Column; 2]>> {
    let Some(def) = crate::inventory::schema::table_for_resource_type(&rule.resource_type) else {
        return Ok(None);
    };
    let Ok(table) = inventory.table(def.name) else {
        return Ok(None);
    };
    Ok(Some([
        table.column(def.resource_id)?,
        table.column(def.resource_name)?,
    ]))
}

/// Runs `judge` over every rule and gives the outcomes in rule order.
///
/// Each rule thread takes the next rule when it is done with one. A thread
/// that waits for polars (which runs each query on its own pool) must not
/// start other work meanwhile: as a rayon task, waiting let it take other
/// rules, so every rule's query was in flight at once, each holding its
/// intermediate tables until all were done, and rules ran no faster side
/// by side than one after another (BENCHMARKS.md, issue 30, sixth pass).
/// The loop is broadcast, one to each rule thread, so nothing else is ever
/// queued for a waiting thread to take.
fn judge_side_by_side<T: Send>(rules: &[Rule], judge: impl Fn(&Rule) -> T + Sync) -> Vec<T> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let worker = || {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let Some(rule) = rules.get(i) else {
                return done;
            };
            done.push((i, judge(rule)));
        }
    };
    let mut outcomes: Vec<(usize, T)> = match rule_threads() {
        Some(pool) => pool.broadcast(|_| worker()).into_iter().flatten().collect(),
        None => worker(),
    };
    outcomes.sort_by_key(|(i, _)| *i);
    outcomes.into_iter().map(|(_, outcome)| outcome).collect()
}

/// The threads rules run on: one more than there are cores, so that a core
/// whose rule is waiting for polars' pool has another rule to run (at a
/// million AMIs, 8.2-8.7 s against 8.7-8.9 s with one per core). polars plans
/// an SQL query recursively, and a rule with several `WITH` steps needs
/// more stack than the 2 MiB a thread gets by default (the pipeline rules
/// overflowed it in debug builds). Stack is reserved, not committed: only
/// the pages a query touches cost memory. None when the threads cannot be
/// made: the rules then run one after another on the calling thread.
fn rule_threads() -> Option<&'static rayon::ThreadPool> {
    const RULE_STACK_BYTES: usize = 64 << 20;
    static POOL: std::sync::OnceLock<Option<rayon::ThreadPool>> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        rayon::ThreadPoolBuilder::new()
            .num_threads(cores + 1)
            .stack_size(RULE_STACK_BYTES)
            .thread_name(|i| format!("amiaudit-rule-{i}"))
            .build()
            .ok()
    })
    .as_ref()
}

/// Runs `work` on a rule thread (the stack polars' SQL planner needs), or
/// here when there are none: for SQL run outside an audit (`query`).
pub fn on_rule_thread<R: Send>(work: impl FnOnce() -> R + Send) -> R {
    match rule_threads() {
        Some(pool) => pool.install(work),
        None => work(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rules finishing out of order: each is judged once, and outcomes come
    /// back in rule order, which the results keep.
    #[test]
    fn rules_judged_side_by_side_come_back_once_each_in_rule_order() {
        let pack = crate::policy::load_builtin().unwrap();
        // At least two rule threads on any machine (one more than cores).
        assert!(rule_threads().unwrap().current_num_threads() >= 2);
        let judged = std::sync::Mutex::new(Vec::new());
        let outcomes = judge_side_by_side(&pack.rules, |rule| {
            // Early rules take longest, so later ones finish first.
            let position = pack.rules.iter().position(|r| r.id == rule.id).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(
                3 * (pack.rules.len() - position) as u64,
            ));
            judged.lock().unwrap().push(rule.id.clone());
            rule.id.clone()
        });
        let in_order: Vec<String> = pack.rules.iter().map(|r| r.id.clone()).collect();
        assert_eq!(outcomes, in_order);
        let mut judged = judged.into_inner().unwrap();
        assert_ne!(judged, in_order, "the rules did not run side by side");
        judged.sort();
        let mut expected = in_order.clone();
        expected.sort();
        assert_eq!(judged, expected);
    }
}
