//! A rule's rows judged where it could not see (its `Gaps`): `unknown`
//! there, dropped where a region is not opted in, one row for each blind
//! account-region, in results order, with the repeated text as categories.

use std::collections::{BTreeSet, HashMap, HashSet};

use polars::prelude::*;
use rustc_hash::FxHashMap;

use super::categories::{CategoryColumn, ResultCategories, as_categories};
use super::gaps::{Gaps, RowKey};
use super::order::{insert_at, rank, sort_results};
use super::{RESULT_COLUMNS, Status};
use crate::error::polars_message;
use crate::policy::Rule;

/// A final status must be one a rule may give; anything else is the rule's
/// error (a status no rule may give in a row that is dropped is not).
fn check_status(status: Result<Status, &str>) -> Result<Status, String> {
    match status {
        Ok(status @ (Status::Pass | Status::Fail | Status::Unknown)) => Ok(status),
        Ok(other) => Err(bad_status(other.as_str())),
        Err(text) => Err(bad_status(text)),
    }
}

fn bad_status(status: &str) -> String {
    format!("query returned status `{status}`; a rule's status must be pass, fail or unknown")
}

/// Judges a rule's rows where it could not see, and gives them as results:
/// marks them `unknown` where the rule could not see, drops those in
/// regions that are not opted in, adds one `unknown` row for each blind
/// account-region the rule produced no row in, sorts, and holds the
/// repeated text as categories of `categories`. `own` is the resource id
/// and name columns of the rule's table: held instead of the rows' own
/// where they are the same text.
///
/// `reasons` are the query's reasons where they were computed apart from
/// its rows (`reasons::collect_split`): only for the rows that keep one.
///
/// One pass over the rows in Rust: the gap sets are small, joins would copy
/// every column, and the category ids are taken as each row is judged, so
/// no column of status or reason text is ever made only to be hashed again.
/// Most queries return their rows in results order (tables are stored in
/// it), so the pass checks the order as it goes; rows out of order are
/// sorted and judged again.
pub(super) fn apply_coverage(
    raw: DataFrame,
    reasons: Option<DataFrame>,
    gaps: &Gaps<'_>,
    skipped: &BTreeSet<(String, String)>,
    rule: &Rule,
    categories: &ResultCategories,
    own: Option<[&Column; 2]>,
) -> Result<DataFrame, String> {
    let polars = |e: PolarsError| polars_message(&e);
    let lookups = Lookups::new(gaps, skipped);
    let mut raw = raw;
    let judged = match judge_rows(&raw, reasons.as_ref(), gaps, &lookups, categories) {
        Ok(Some(judged)) => judged,
        // Out of order, or refused: judged again in results order, so that
        // a refusal names the first bad row in the order reports use,
        // whichever order the query gave. Reasons computed apart go back
        // to their rows first, to be sorted with them.
        Ok(None) | Err(_) => {
            if let Some(reasons) = &reasons {
                raw = with_reasons(raw, reasons)?;
            }
            raw = sort_results(raw).map_err(polars)?;
            judge_rows(&raw, None, gaps, &lookups, categories)?
                .ok_or("rows sorted into results order were judged out of order")?
        }
    };
    let Judged {
        columns,
        keep,
        blind,
    } = judged;
    let mut texts = [raw.column("resource_id"), raw.column("resource_name")]
        .into_iter()
        .map(|c| c.cloned())
        .collect::<PolarsResult<Vec<Column>>>()
        .map_err(polars)?;
    if let Some(keep) = keep {
        let keep = BooleanChunked::from_slice("keep".into(), &keep);
        for text in &mut texts {
            *text = text.filter(&keep).map_err(polars)?;
        }
    }
    // Where the rows' ids and names are exactly the rule's table's (a rule
    // with a row for every AMI: tables are stored in results order), the
    // table's own columns are held instead of the query's copy. The text is
    // the same; what goes is two views a row, about 32 MB for each of the
    // rules over a million AMIs, held to the end of the audit.
    if let Some(own) = own {
        for (text, own) in texts.iter_mut().zip(own) {
            if own.dtype() == &DataType::String
                && text.dtype() == &DataType::String
                && text.equals_missing(own)
            {
                *text = own.clone().with_name(text.name().clone());
            }
        }
    }
    let [resource_id, resource_name] = <[Column; 2]>::try_from(texts)
        .map_err(|_| "the results' text columns are missing".to_string())?;
    let [accounts, regions, kinds, statuses, reasons] = columns;
    let kept = accounts.len();
    let df = DataFrame::new(
        kept,
        vec![
            accounts,
            regions,
            kinds,
            resource_id,
            resource_name,
            statuses,
            reasons,
        ],
    )
    .map_err(polars)?;
    let mut df = add_blind(df, &blind, categories).map_err(polars)?;
    let rule_id = Column::new_scalar(
        "rule_id".into(),
        Scalar::from(PlSmallStr::from(rule.id.as_str())),
        df.height(),
    );
    let rule_categories = categories.column("rule_id").map_err(polars)?;
    df.with_column(as_categories(&rule_id, rule_categories).map_err(polars)?)
        .map_err(polars)?;
    df.select(RESULT_COLUMNS).map_err(polars)
}

/// The gap sets keyed by borrowed strings, for lookups per row.
struct Lookups<'g> {
    regions: HashMap<(&'g str, &'g str), &'g str>,
    resources: HashMap<(&'g str, &'g str, &'g str), &'g str>,
    /// The account-regions some resource of which is in `resources`: the
    /// rows of every other account-region are not looked up one by one.
    regions_with_resources: HashSet<(&'g str, &'g str)>,
    skipped: HashSet<(&'g str, &'g str)>,
}

impl<'g> Lookups<'g> {
    fn new(gaps: &'g Gaps<'_>, skipped: &'g BTreeSet<(String, String)>) -> Self {
        Lookups {
            regions: gaps
                .regions
                .iter()
                .map(|((a, r), why)| ((a.as_str(), r.as_str()), why.as_str()))
                .collect(),
            resources: gaps
                .resources
                .iter()
                .map(|((a, r, id), why)| ((a.as_str(), r.as_str(), id.as_str()), why.as_str()))
                .collect(),
            regions_with_resources: gaps
                .resources
                .keys()
                .map(|(a, r, _)| (a.as_str(), r.as_str()))
                .collect(),
            skipped: skipped
                .iter()
                .map(|(a, r)| (a.as_str(), r.as_str()))
                .collect(),
        }
    }
}

/// A rule's rows judged: the account, region, resource type, status and
/// reason columns as categories, which rows were kept (None: every one),
/// and where each blind account-region's row goes.
struct Judged<'g> {
    columns: [Column; 5],
    keep: Option<Vec<bool>>,
    blind: Vec<(usize, &'g (String, String), &'g String)>,
}

/// Judges the rows of `raw` in the order given, or None as soon as a row
/// is out of results order (account, region, resource; nulls last).
/// `reasons`: the reasons of the rows that keep one, when `raw`'s are not
/// its own.
fn judge_rows<'g>(
    raw: &DataFrame,
    reasons: Option<&DataFrame>,
    gaps: &'g Gaps<'_>,
    lookups: &Lookups<'_>,
    categories: &ResultCategories,
) -> Result<Option<Judged<'g>>, String> {
    // One loop for each source of reasons, each with its own iterator
    // inlined (the loop runs once a result, 23 M times at a million AMIs).
    match reasons {
        None => {
            let own = text_column(raw, "reason")?.iter();
            judge_rows_with(raw, OwnReasons(own), gaps, lookups, categories)
        }
        Some(kept) => judge_rows_with(raw, KeptReasons::new(kept)?, gaps, lookups, categories),
    }
}

/// Column `name` of `df`, which must be text.
fn text_column<'d>(df: &'d DataFrame, name: &str) -> Result<&'d StringChunked, String> {
    df.column(name)
        .and_then(Column::str)
        .map_err(|e| polars_message(&e))
}

fn judge_rows_with<'g, 'a>(
    raw: &'a DataFrame,
    mut reasons_of_rows: impl QueryReasons<'a>,
    gaps: &'g Gaps<'_>,
    lookups: &Lookups<'_>,
    categories: &ResultCategories,
) -> Result<Option<Judged<'g>>, String> {
    let polars = |e: PolarsError| polars_message(&e);
    let height = raw.height();
    // The columns zipped as they are: the generic `text_rows` (any number
    // of columns, text or categories) made a call per cell, six a row, 23 M
    // rows at a million AMIs.
    let text = |name: &str| text_column(raw, name);
    let rows = text("account_id")?
        .iter()
        .zip(text("region")?.iter())
        .zip(text("resource_id")?.iter())
        .zip(text("status")?.iter());
    // Most queries name no resource type: the rule's, the same for every
    // row, is looked up once instead of made into a column of text.
    let kind_column = raw.column("resource_type").map_err(polars)?;
    let mut kinds_of_rows = match kind_column.as_scalar_column() {
        Some(scalar) if scalar.dtype() == &DataType::String => {
            let kind = scalar.scalar().value().extract_str();
            Kinds::Same(kind)
        }
        _ => Kinds::Each(kind_column.str().map_err(polars)?.iter()),
    };
    let column = |name: &str| {
        categories
            .column(name)
            .and_then(|dtype| CategoryColumn::new(name, dtype, height))
            .map_err(polars)
    };
    let (mut accounts, mut regions, mut kinds) = (
        column("account_id")?,
        column("region")?,
        column("resource_type")?,
    );
    let (mut statuses, mut reasons) = (column("status")?, column("reason")?);
    // The id of each status a row may be given, taken once.
    let (mut pass_id, mut fail_id, mut unknown_id) = (None, None, None);
    // The id of the empty reason (a pass's), taken once: most rows pass.
    let mut no_reason_id = None;
    let mut keep: Option<Vec<bool>> = None;
    // The gap account-regions, in results order, that no row has reached
    // yet: one the rows pass without a row in it is blind, and gets a row
    // where it falls.
    let mut unreached = gaps.regions.iter().peekable();
    let mut blind: Vec<(usize, &(String, String), &String)> = Vec::new();
    // A row with no region reaches the gap whose region is empty (coverage
    // keys a missing one as ""), wherever that gap sorts: such gaps get no
    // row of their own either. (A kept row with no account is refused.)
    let mut reached_by_null: HashSet<(&str, &str)> = HashSet::new();
    let mut kept = 0usize;
    // The account-region lookups are made once per run of equal keys.
    let mut run: Option<(Option<&str>, Option<&str>)> = None;
    let mut last_resource: Option<&str> = None;
    let (mut run_skipped, mut run_gap, mut run_resource_gaps) = (false, None, false);
    let mut run_ids: (Option<u32>, Option<u32>) = (None, None);
    // Each resource type's facts not known, looked up once per run of rows
    // of that type.
    type Unknown<'u> = Option<&'u FxHashMap<RowKey<'u>, usize>>;
    let mut kind_run: Option<(Option<&str>, Option<u32>, Unknown)> = None;
    for (i, (((account, region), resource), status)) in rows.enumerate() {
        let kind = kinds_of_rows.next();
        if run != Some((account, region)) {
            let key = (rank(account), rank(region));
            if let Some((a, r)) = run
                && (rank(a), rank(r)) > key
            {
                return Ok(None);
            }
            run = Some((account, region));
            while let Some(&(gap_key, why)) = unreached.peek() {
                let gap_rank = (rank(Some(&gap_key.0)), rank(Some(&gap_key.1)));
                if gap_rank > key {
                    break;
                }
                if gap_rank < key {
                    blind.push((kept, gap_key, why));
                }
                unreached.next();
            }
            let (a, r) = (account.unwrap_or(""), region.unwrap_or(""));
            if account.is_none() || region.is_none() {
                reached_by_null.insert((a, r));
            }
            run_skipped = lookups.skipped.contains(&(a, r));
            run_gap = lookups.regions.get(&(a, r)).copied();
            run_resource_gaps = lookups.regions_with_resources.contains(&(a, r));
            run_ids = (
                accounts.id(account).map_err(polars)?,
                regions.id(region).map_err(polars)?,
            );
        } else if rank(resource) < rank(last_resource) {
            return Ok(None);
        }
        last_resource = resource;
        let reason = reasons_of_rows.next(status)?;
        if run_skipped {
            if let Some(k) = keep.get_or_insert_with(|| vec![true; height]).get_mut(i) {
                *k = false;
            }
            continue;
        }
        let (mut status, mut reason): (Result<Status, &str>, &str) = match status {
            // The query's own reason says which fact was missing.
            None => (
                Ok(Status::Unknown),
                reason
                    .filter(|r| !r.is_empty())
                    .unwrap_or("needed data is missing"),
            ),
            // A pass's reason is never kept, however it was computed.
            Some(text) => match Status::parse(text) {
                Some(Status::Pass) => (Ok(Status::Pass), ""),
                parsed => (parsed.ok_or(text), reason.unwrap_or("")),
            },
        };
        let (kind_id, unknown_facts) = match kind_run {
            Some((k, id, facts)) if same_text(k, kind) => (id, facts),
            _ => {
                let id = kinds.id(kind).map_err(polars)?;
                let facts = kind
                    .and_then(|k| gaps.unknown_facts.get(k))
                    .filter(|m| !m.is_empty());
                kind_run = Some((kind, id, facts));
                (id, facts)
            }
        };
        let gap = run_gap.or_else(|| {
            if !run_resource_gaps {
                return None;
            }
            let (a, r) = (account.unwrap_or(""), region.unwrap_or(""));
            resource.and_then(|id| lookups.resources.get(&(a, r, id)).copied())
        });
        if let Some(why) = gap {
            (status, reason) = (Ok(Status::Unknown), why);
        } else if status == Ok(Status::Pass)
            && let Some(why) = unknown_facts
                .and_then(|m| {
                    m.get(&(
                        account.unwrap_or(""),
                        region.unwrap_or(""),
                        resource.unwrap_or(""),
                    ))
                })
                .and_then(|&reason| gaps.fact_reasons.get(reason))
        {
            (status, reason) = (Ok(Status::Unknown), why.as_str());
        }
        let status = check_status(status)?;
        // Every result is counted in its account (the summary, the
        // hygiene score): one with none is the rule's error, never an
        // audit that cannot be summed.
        if account.is_none() {
            return Err(format!(
                "query returned a row with no account_id (resource `{}` in region `{}`); every result must name its account",
                resource.unwrap_or(""),
                region.unwrap_or("")
            ));
        }
        let status_id = match status {
            Status::Pass => &mut pass_id,
            Status::Fail => &mut fail_id,
            _ => &mut unknown_id,
        };
        if status_id.is_none() {
            *status_id = statuses.id(Some(status.as_str())).map_err(polars)?;
        }
        accounts.push_id(run_ids.0).map_err(polars)?;
        regions.push_id(run_ids.1).map_err(polars)?;
        kinds.push_id(kind_id).map_err(polars)?;
        statuses.push_id(*status_id).map_err(polars)?;
        if reason.is_empty() {
            if no_reason_id.is_none() {
                no_reason_id = reasons.id(Some("")).map_err(polars)?;
            }
            reasons.push_id(no_reason_id).map_err(polars)?;
        } else {
            reasons.push(Some(reason)).map_err(polars)?;
        }
        kept += 1;
    }
    reasons_of_rows.finish()?;
    blind.extend(unreached.map(|(key, why)| (kept, key, why)));
    blind.retain(|(_, (a, r), _)| !reached_by_null.contains(&(a.as_str(), r.as_str())));
    Ok(Some(Judged {
        columns: [
            accounts.finish(),
            regions.finish(),
            kinds.finish(),
            statuses.finish(),
            reasons.finish(),
        ],
        keep,
        blind,
    }))
}

/// The query's reason of each row: from its own column (`OwnReasons`) or,
/// where they were computed apart, from the reasons of the rows that keep
/// one (`KeptReasons`).
trait QueryReasons<'a> {
    /// The reason of the next row, whose status is `status`.
    fn next(&mut self, status: Option<&str>) -> Result<Option<&'a str>, String>;
    /// Checks that no reason is left over.
    fn finish(self) -> Result<(), String>;
}

struct OwnReasons<I>(I);

impl<'a, I: Iterator<Item = Option<&'a str>>> QueryReasons<'a> for OwnReasons<I> {
    fn next(&mut self, _status: Option<&str>) -> Result<Option<&'a str>, String> {
        Ok(self.0.next().flatten())
    }

    fn finish(self) -> Result<(), String> {
        Ok(())
    }
}

/// Each reason beside the status of its row.
struct KeptReasons<I>(I);

/// A cell of text, or null.
type Cell<'a> = Option<&'a str>;

impl<'a> KeptReasons<()> {
    fn new(
        kept: &'a DataFrame,
    ) -> Result<KeptReasons<impl Iterator<Item = (Cell<'a>, Cell<'a>)>>, String> {
        let statuses = text_column(kept, super::reasons::STATUS)?.iter();
        Ok(KeptReasons(
            statuses.zip(text_column(kept, "reason")?.iter()),
        ))
    }
}

/// The error for reasons computed apart that do not follow the rows.
const MISMATCHED_REASONS: &str =
    "the query's reasons do not follow its rows (reported as the rule's error, never guessed)";

impl<'a, I> QueryReasons<'a> for KeptReasons<I>
where
    I: Iterator<Item = (Cell<'a>, Cell<'a>)>,
{
    /// A reason kept apart must be the next row's that keeps one, with the
    /// same status.
    fn next(&mut self, status: Option<&str>) -> Result<Option<&'a str>, String> {
        if !super::reasons::keeps_reason(status) {
            return Ok(None);
        }
        match self.0.next() {
            Some((kept_status, reason)) if kept_status == status => Ok(reason),
            _ => Err(MISMATCHED_REASONS.to_string()),
        }
    }

    /// Every reason kept apart was some row's.
    fn finish(mut self) -> Result<(), String> {
        match self.0.next() {
            Some(_) => Err(MISMATCHED_REASONS.to_string()),
            None => Ok(()),
        }
    }
}

/// `raw` with its reasons, computed apart, in its own `reason` column.
fn with_reasons(mut raw: DataFrame, reasons: &DataFrame) -> Result<DataFrame, String> {
    let polars = |e: PolarsError| polars_message(&e);
    let column: StringChunked = {
        let mut kept = KeptReasons::new(reasons)?;
        let column = text_column(&raw, "status")?
            .iter()
            .map(|status| kept.next(status))
            .collect::<Result<_, String>>()?;
        kept.finish()?;
        column
    };
    raw.with_column(column.with_name("reason".into()).into_column())
        .map_err(polars)?;
    Ok(raw)
}

/// Whether two cells hold the same text; the same cell (the rule's one
/// resource type, every row) is known without reading its bytes.
fn same_text(a: Option<&str>, b: Option<&str>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => std::ptr::eq(a, b) || a == b,
        (None, None) => true,
        _ => false,
    }
}

/// Each row's resource type: the rule's for every row, or the query's own
/// column.
enum Kinds<'a, I> {
    Same(Option<&'a str>),
    Each(I),
}

impl<'a, I: Iterator<Item = Option<&'a str>>> Kinds<'a, I> {
    fn next(&mut self) -> Option<&'a str> {
        match self {
            Kinds::Same(kind) => *kind,
            Kinds::Each(kinds) => kinds.next().flatten(),
        }
    }
}

/// Adds the `unknown` row of each blind account-region (the rule saw
/// nothing there) at its place in results order, given as the number of
/// judged rows before it.
fn add_blind(
    df: DataFrame,
    blind: &[(usize, &(String, String), &String)],
    categories: &ResultCategories,
) -> PolarsResult<DataFrame> {
    if blind.is_empty() {
        return Ok(df);
    }
    let n = blind.len();
    let mut placeholders = df!(
        "account_id" => blind.iter().map(|(_, (a, _), _)| a.as_str()).collect::<Vec<_>>(),
        "region" => blind.iter().map(|(_, (_, r), _)| r.as_str()).collect::<Vec<_>>(),
        "resource_type" => vec!["account-region"; n],
        "resource_id" => blind.iter().map(|(_, (_, r), _)| r.as_str()).collect::<Vec<_>>(),
        "resource_name" => vec![""; n],
        "status" => vec![Status::Unknown.as_str(); n],
        "reason" => blind.iter().map(|(_, _, why)| why.as_str()).collect::<Vec<_>>(),
    )?;
    for name in ["account_id", "region", "resource_type", "status", "reason"] {
        let cast = as_categories(placeholders.column(name)?, categories.column(name)?)?;
        placeholders.with_column(cast)?;
    }
    let positions: Vec<usize> = blind.iter().map(|(at, _, _)| *at).collect();
    insert_at(df, &placeholders, &positions)
}

#[cfg(test)]
mod tests;
