//! Reasons built only for the rows that keep one.
//!
//! A result keeps its query's reason only where the query's status is not
//! `pass`: a pass needs none, and a pass the engine makes `unknown` gets
//! the engine's reason. At a million AMIs three rows in four pass, and
//! polars computes every branch of a `CASE` (each `concat` of a row's
//! facts) for every row before choosing: building reasons no result keeps
//! was a fifth of the rules' time (BENCHMARKS.md, issue 30, twelfth
//! pass).
//!
//! So where a query's last step computes `status` and `reason` row by row
//! (a `SELECT`, or each branch of a `UNION ALL` of them), that step is
//! split: its input is computed once, only the columns the step reads,
//! with each row's status beside it; the rows are taken from that without
//! their reasons, and the reasons from its rows whose status is not
//! `pass`, in the same order. Any other query runs as written. Either way
//! a pass's reason is never read (`judge`), so the results are the same.
//!
//! The input is collected before the two halves are taken from it rather
//! than shared as a polars cache: a plan with a cache in it gets none of
//! polars' own (a rule's `WITH` step read twice was computed twice).

use polars::lazy::dsl::DslPlan;
use polars::prelude::*;
use polars_plan::plans::expr_ir::ExprIR;
use polars_plan::plans::{IR, is_elementwise_rec, is_inherently_nondeterministic};
use polars_plan::utils::expr_to_leaf_column_names_iter;

/// The column that holds each row's status while a query is split; the
/// reasons' frame gives it beside each reason, so that the judge can check
/// that every reason is its row's.
pub(super) const STATUS: &str = "__amiaudit_status";

/// Whether a row whose query status is `status` keeps the query's reason:
/// the same test as the filter before the reasons.
pub(super) fn keeps_reason(status: Option<&str>) -> bool {
    status != Some(crate::status::Status::Pass.as_str())
}

/// A query split: its rows, each reason null, with `finish` applied; and
/// apart, columns [`STATUS`] and `reason` (text), one row for each row
/// whose status is not `pass` (`keeps_reason`), in the same order. None
/// where the query's last step is not a row-by-row `SELECT` of `status`
/// and `reason` (or a `UNION ALL` of them): then it runs as written.
pub(super) fn collect_split(
    query: &LazyFrame,
    finish: &dyn Fn(LazyFrame) -> LazyFrame,
) -> Option<PolarsResult<(DataFrame, DataFrame)>> {
    let optimizations = query.get_current_optimizations();
    let steps = steps(&query.logical_plan, optimizations);
    if steps.iter().all(|step| matches!(step, Step::AsWritten(_))) {
        return None;
    }
    let collect = || {
        let mut rows: Option<DataFrame> = None;
        let mut reasons: Option<DataFrame> = None;
        for step in steps {
            let (step_rows, step_reasons) = step.collect(finish)?;
            for (all, part) in [(&mut rows, step_rows), (&mut reasons, step_reasons)] {
                match all {
                    Some(all) => {
                        all.vstack_mut_owned(part)?;
                    }
                    None => *all = Some(part),
                }
            }
        }
        match (rows, reasons) {
            (Some(rows), Some(reasons)) => Ok((rows, reasons)),
            _ => Err(polars_err!(ComputeError: "a split query had no steps")),
        }
    };
    Some(collect())
}

/// One step of a query whose rows come one step after another.
enum Step {
    /// A row-by-row `SELECT`, taken apart.
    Split {
        /// Its input: the columns the step reads, and [`STATUS`].
        judged: LazyFrame,
        /// Its projections, `status` read from [`STATUS`] and `reason`
        /// null.
        rows: Vec<Expr>,
        reason: Expr,
    },
    /// A step run as written, in a `UNION ALL` with steps that are split:
    /// one that cannot be taken apart, or whose reasons are literals
    /// (choosing them costs less than taking the step apart).
    AsWritten(LazyFrame),
}

impl Step {
    fn collect(
        self,
        finish: &dyn Fn(LazyFrame) -> LazyFrame,
    ) -> PolarsResult<(DataFrame, DataFrame)> {
        let text = |e: Expr| e.cast(DataType::String);
        let keeps_reason = text(col(STATUS)).neq_missing(lit(crate::status::Status::Pass.as_str()));
        match self {
            Step::Split {
                judged,
                rows,
                reason,
            } => {
                let optimizations = judged.get_current_optimizations();
                let judged = judged.collect()?;
                let rows = finish(
                    judged
                        .clone()
                        .lazy()
                        .with_optimizations(optimizations)
                        .select(rows),
                )
                .collect()?;
                // The status goes with the reason: it is checked against
                // the row's, and it keeps a reason that is one literal as
                // tall as the rows that keep it.
                let reasons = judged
                    .lazy()
                    .with_optimizations(optimizations)
                    .filter(keeps_reason)
                    .select([text(col(STATUS)), text(reason).alias("reason")])
                    .collect()?;
                Ok((rows, reasons))
            }
            Step::AsWritten(step) => {
                let rows = finish(step).collect()?;
                let reasons = rows
                    .clone()
                    .lazy()
                    .select([col("status").alias(STATUS), col("reason")])
                    .filter(keeps_reason)
                    .collect()?;
                Ok((rows, reasons))
            }
        }
    }
}

/// The steps whose rows `plan` gives, one after another: each branch of a
/// `UNION ALL`, or the plan itself.
fn steps(plan: &DslPlan, optimizations: OptFlags) -> Vec<Step> {
    match plan {
        // The plan as written, where polars has planned it already (for
        // its schema).
        DslPlan::IR { dsl, .. } => steps(dsl, optimizations),
        // Each branch on its own gives its own column types; a union
        // gives every branch the types wide enough for all (an integer
        // next to a float is a float, so `1` reads `1.0`). Taken apart
        // only where they are the same.
        DslPlan::Union { inputs, args }
            if !args.diagonal && same_types(plan, inputs, optimizations) =>
        {
            inputs
                .iter()
                .flat_map(|input| steps(input, optimizations))
                .collect()
        }
        _ => vec![split_step(plan, optimizations).unwrap_or_else(|| {
            Step::AsWritten(LazyFrame::from(plan.clone()).with_optimizations(optimizations))
        })],
    }
}

/// Whether every one of `inputs` gives columns of the same names and
/// types as their union, `union`.
fn same_types(union: &DslPlan, inputs: &[DslPlan], optimizations: OptFlags) -> bool {
    let schema = |plan: &DslPlan| {
        LazyFrame::from(plan.clone())
            .with_optimizations(optimizations)
            .collect_schema()
            .ok()
    };
    let Some(all) = schema(union) else {
        return false;
    };
    inputs
        .iter()
        .all(|input| schema(input).is_some_and(|one| one == all))
}

/// `plan` taken apart, where it is a row-by-row `SELECT` of `status` and
/// a `reason` built from the row's columns.
fn split_step(plan: &DslPlan, optimizations: OptFlags) -> Option<Step> {
    let DslPlan::Select { expr, input, .. } = plan else {
        return None;
    };
    let at = |name: &str| {
        let mut found = expr
            .iter()
            .enumerate()
            .filter(|(_, e)| output_name(e) == Some(name));
        match (found.next(), found.next()) {
            (Some((i, _)), None) => Some(i),
            _ => None,
        }
    };
    let (status_at, reason_at) = (at("status")?, at("reason")?);
    let (status, reason) = (
        unaliased(expr.get(status_at)?),
        unaliased(expr.get(reason_at)?),
    );
    // Literal reasons cost less to choose for every row than the step
    // costs to take apart.
    expr_to_leaf_column_names_iter(&reason).next()?;
    // Every column the step reads, by name: a selector (`*`) reads
    // columns no name says.
    if expr
        .iter()
        .any(|e| e.into_iter().any(|n| matches!(n, Expr::Selector(_))))
    {
        return None;
    }
    let mut read: Vec<PlSmallStr> = Vec::new();
    for name in expr.iter().flat_map(expr_to_leaf_column_names_iter) {
        if !read.contains(&name) {
            read.push(name);
        }
    }
    if read.iter().any(|name| name == STATUS) || !row_by_row(plan, optimizations)? {
        return None;
    }
    let judged = LazyFrame::from(input.as_ref().clone())
        .with_optimizations(optimizations)
        .select(
            read.into_iter()
                .map(col)
                .chain([status.alias(STATUS)])
                .collect::<Vec<_>>(),
        );
    let rows = expr
        .iter()
        .enumerate()
        .map(|(i, e)| match i {
            _ if i == status_at => col(STATUS).alias("status"),
            _ if i == reason_at => lit(NULL).cast(DataType::String).alias("reason"),
            _ => e.clone(),
        })
        .collect();
    Some(Step::Split {
        judged,
        rows,
        reason,
    })
}

/// The name a projection gives its column, where it says so plainly.
fn output_name(expr: &Expr) -> Option<&str> {
    match expr {
        Expr::Alias(_, name) | Expr::Column(name) => Some(name.as_str()),
        _ => None,
    }
}

fn unaliased(expr: &Expr) -> Expr {
    match expr {
        Expr::Alias(inner, _) => inner.as_ref().clone(),
        other => other.clone(),
    }
}

/// Whether `select`'s `status` and `reason` are computed row by row (each
/// row's from that row alone, the same every time), as polars itself
/// judges expressions: then a reason computed for some rows is what it
/// would have been among all of them, and a status computed for every row
/// makes the step as tall as its input. None when polars cannot plan it.
fn row_by_row(select: &DslPlan, optimizations: OptFlags) -> Option<bool> {
    let plan = LazyFrame::from(select.clone())
        .with_optimizations(optimizations)
        .to_alp()
        .ok()?;
    let IR::Select { expr, .. } = plan.lp_arena.get(plan.lp_top) else {
        return Some(false);
    };
    let named = |name: &str| expr.iter().find(|e| e.output_name().as_str() == name);
    let fits = |e: Option<&ExprIR>| {
        e.is_some_and(|e| {
            is_elementwise_rec(e.node(), &plan.expr_arena)
                && !is_inherently_nondeterministic(e.node(), &plan.expr_arena)
        })
    };
    Some(fits(named("status")) && fits(named("reason")))
}
