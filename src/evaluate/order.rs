//! The order every report uses: by account, region and resource. Results
//! mostly arrive in it (inventories are stored sorted), so checking is
//! cheaper than sorting.

use polars::prelude::*;

/// Sorts by account, region, resource: the order every report uses.
/// Most queries already return rows in inventory order, which is sorted;
/// checking that is one linear pass, far cheaper than a stable
/// multi-column sort of millions of strings.
pub(super) fn sort_results(df: DataFrame) -> PolarsResult<DataFrame> {
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

/// Inserts the rows of `extra` into `df`, each before the row of `df` at
/// its position (`positions`, one per row of `extra`, in order), by
/// slicing instead of sorting.
pub(super) fn insert_at(
    df: DataFrame,
    extra: &DataFrame,
    positions: &[usize],
) -> PolarsResult<DataFrame> {
    let mut out = df.clear();
    let mut start = 0usize;
    for (j, &at) in positions.iter().enumerate() {
        out.vstack_mut_owned(df.slice(start as i64, at.saturating_sub(start)))?;
        out.vstack_mut_owned(extra.slice(j as i64, 1))?;
        start = at.max(start);
    }
    out.vstack_mut_owned(df.slice(start as i64, df.height().saturating_sub(start)))?;
    Ok(out)
}

/// Where a text sorts in results order: nulls last, above every string.
pub(super) fn rank(v: Option<&str>) -> (bool, &str) {
    (v.is_none(), v.unwrap_or(""))
}

/// Whether rows are already in (account_id, region, resource_id) order,
/// nulls last, as `sort_results` would put them.
fn is_sorted(df: &DataFrame) -> PolarsResult<bool> {
    let key = |name: &str| -> PolarsResult<StringChunked> { Ok(df.column(name)?.str()?.clone()) };
    let (account, region, resource) = (key("account_id")?, key("region")?, key("resource_id")?);
    type Rank<'a> = (bool, &'a str);
    let mut previous: Option<(Rank, Rank, Rank)> = None;
    for ((a, r), id) in account.iter().zip(region.iter()).zip(resource.iter()) {
        let current = (rank(a), rank(r), rank(id));
        if previous.is_some_and(|p| p > current) {
            return Ok(false);
        }
        previous = Some(current);
    }
    Ok(true)
}
