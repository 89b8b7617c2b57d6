//! The checks that make "loaded means valid" true, over a whole table:
//! types, required columns, vocabularies, timestamp range and unique keys.

use std::collections::HashMap;
use std::path::Path;

use polars::prelude::*;

use super::builder::{MAX_TEXT_BYTES, TIMESTAMP_RANGE_MS, dtype_of};
use super::schema::{ColumnKind, TableDef};
use crate::error::{Error, Result, polars_message};

/// Where a table came from, to name a bad row.
pub enum Origin<'a> {
    /// Built in memory by the scanner or `synth`: a bad row is our bug.
    Memory,
    /// A JSON Lines file; `lines[i]` is the line of row `i`.
    Lines { path: &'a Path, lines: Vec<usize> },
    /// A Parquet file: rows are counted from 1.
    Rows { path: &'a Path },
}

impl Origin<'_> {
    fn error(&self, def: &TableDef, row: Option<usize>, message: String) -> Error {
        match (self, row) {
            (Origin::Memory, Some(row)) => {
                Error::Internal(format!("table `{}` row {}: {message}", def.name, row + 1))
            }
            (Origin::Memory, None) => Error::Internal(format!("table `{}`: {message}", def.name)),
            (Origin::Lines { path, lines }, Some(row)) => Error::input(format!(
                "{}:{}: {message}",
                path.display(),
                lines.get(row).copied().unwrap_or(row + 1)
            )),
            (Origin::Rows { path }, Some(row)) => {
                Error::input(format!("{}: row {}: {message}", path.display(), row + 1))
            }
            (Origin::Lines { path, .. } | Origin::Rows { path }, None) => {
                Error::input(format!("{}: {message}", path.display()))
            }
        }
    }
}

/// Checks a whole table; the first problem is the error.
pub fn check(def: &TableDef, df: &DataFrame, origin: &Origin) -> Result<()> {
    let internal = |e: PolarsError| Error::Internal(polars_message(&e));
    for column in def.columns {
        let Ok(found) = df.column(column.name) else {
            return Err(origin.error(def, None, format!("column `{}` is missing", column.name)));
        };
        if found.dtype() != &dtype_of(column.kind) {
            return Err(origin.error(
                def,
                None,
                format!(
                    "column `{}` has type {}, expected {}",
                    column.name,
                    found.dtype(),
                    column.kind.name()
                ),
            ));
        }
        if column.required && found.null_count() > 0 {
            let row = found.is_null().iter().position(|v| v == Some(true));
            return Err(origin.error(def, row, format!("column `{}` is required", column.name)));
        }
        if let Some(words) = column.vocabulary {
            let values = found.str().map_err(internal)?;
            if let Some((row, bad)) = values
                .iter()
                .enumerate()
                .find_map(|(i, v)| v.filter(|v| !words.contains(v)).map(|v| (i, v)))
            {
                return Err(origin.error(
                    def,
                    Some(row),
                    format!(
                        "column `{}`: `{}` is not one of {}",
                        column.name,
                        bad.escape_debug(),
                        words.join(", ")
                    ),
                ));
            }
        }
        if column.kind == ColumnKind::Str {
            let values = found.str().map_err(internal)?;
            if let Some((row, bytes)) = values
                .iter()
                .enumerate()
                .find_map(|(i, v)| v.filter(|v| v.len() > MAX_TEXT_BYTES).map(|v| (i, v.len())))
            {
                return Err(origin.error(
                    def,
                    Some(row),
                    format!(
                        "column `{}`: {bytes} bytes of text; a cell holds at most {MAX_TEXT_BYTES}",
                        column.name
                    ),
                ));
            }
        }
        if column.kind == ColumnKind::Timestamp {
            let ms = found.cast(&DataType::Int64).map_err(internal)?;
            let ms = ms.i64().map_err(internal)?;
            if let Some(row) = ms
                .iter()
                .position(|v| v.is_some_and(|v| !TIMESTAMP_RANGE_MS.contains(&v)))
            {
                return Err(origin.error(
                    def,
                    Some(row),
                    format!(
                        "column `{}`: timestamp outside 1970-01-01..2200-01-01",
                        column.name
                    ),
                ));
            }
        }
    }
    if let Some(extra) = df
        .get_column_names()
        .into_iter()
        .find(|n| def.column(n.as_str()).is_none())
    {
        return Err(origin.error(def, None, format!("unknown column `{extra}`")));
    }
    check_keys(def, df, origin)
}

/// No two rows may share the table's key. The check is one parallel
/// group-by; only when it finds a duplicate are the rows walked to name it.
fn check_keys(def: &TableDef, df: &DataFrame, origin: &Origin) -> Result<()> {
    if def.key.is_empty() || df.height() < 2 {
        return Ok(());
    }
    let internal = |e: PolarsError| Error::Internal(polars_message(&e));
    let keys = df.select(def.key.iter().copied()).map_err(internal)?;
    if !keys.is_duplicated().map_err(internal)?.any() {
        return Ok(());
    }
    // Each key column as text (integers printed), so one hash map serves all.
    let columns: Vec<Vec<Option<String>>> = keys
        .columns()
        .iter()
        .map(|column| {
            Ok(column
                .cast(&DataType::String)
                .map_err(internal)?
                .str()
                .map_err(internal)?
                .iter()
                .map(|v| v.map(str::to_string))
                .collect())
        })
        .collect::<Result<_>>()?;
    let mut seen: HashMap<Vec<Option<&str>>, usize> = HashMap::with_capacity(df.height());
    for row in 0..df.height() {
        let key: Vec<Option<&str>> = columns
            .iter()
            .map(|c| c.get(row).and_then(|v| v.as_deref()))
            .collect();
        if let Some(first) = seen.insert(key, row) {
            let first = match origin {
                Origin::Lines { lines, .. } => {
                    format!("line {}", lines.get(first).copied().unwrap_or(first + 1))
                }
                _ => format!("row {}", first + 1),
            };
            return Err(origin.error(
                def,
                Some(row),
                format!(
                    "duplicate row: same {} as {first}",
                    def.key
                        .iter()
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
    }
    Err(Error::Internal(format!(
        "table `{}`: polars found a duplicate key the row walk did not",
        def.name
    )))
}
