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
            if let Some((row, bytes)) = first_too_long(values) {
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

/// The first cell longer than [`MAX_TEXT_BYTES`], with its length: read
/// from each cell's view, which holds its length, so the text itself is
/// never touched (a million AMIs' tables are tens of millions of cells).
fn first_too_long(values: &StringChunked) -> Option<(usize, usize)> {
    let mut row = 0;
    for chunk in values.downcast_iter() {
        let long = chunk
            .views()
            .iter()
            .enumerate()
            .find(|(i, view)| view.length as usize > MAX_TEXT_BYTES && chunk.get(*i).is_some());
        if let Some((i, view)) = long {
            return Some((row + i, view.length as usize));
        }
        row += chunk.len();
    }
    None
}

/// No two rows may share the table's key. A table as the writer stores it
/// (sorted by account, region, resource) is checked in one pass: a
/// repeated key can only sit in the run of rows of one resource, and those
/// runs are short. Any other order (or a run too long to compare row by
/// row) takes one parallel group-by, which at a million AMIs held a
/// gigabyte of row-encoded keys. Only when a duplicate is found are the
/// rows walked to name it.
fn check_keys(def: &TableDef, df: &DataFrame, origin: &Origin) -> Result<()> {
    if def.key.is_empty() || df.height() < 2 {
        return Ok(());
    }
    let internal = |e: PolarsError| Error::Internal(polars_message(&e));
    let stored = super::write::storage_order(def);
    // kms_keys is stored by account first, which is not part of its key.
    if stored.iter().all(|c| def.key.contains(c)) {
        let rest = def.key.iter().copied().filter(|k| !stored.contains(k));
        let columns = stored.iter().copied().chain(rest);
        if unique_in_stored_order(&df.select(columns).map_err(internal)?, stored.len()) {
            return Ok(());
        }
    }
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

/// One cell of a key, ordered as the writer sorts: by value, nulls last.
/// Within a column every cell is of one kind or `Null`; two nulls are the
/// same key, as the group-by counts them.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum KeyCell<'a> {
    Text(&'a str),
    Number(i64),
    Flag(bool),
    Null,
}

/// Whether `keys` (the stored order's `sorted` columns, then the rest of
/// the key) are all distinct, proven in one pass: the sorted columns never
/// fall, and within each run of rows equal on them the rest never repeats.
/// False when that cannot be shown (another order, a run longer than
/// [`RUN_COMPARED`], a column kind it does not compare): the group-by then
/// decides, so a false here is never a refusal.
fn unique_in_stored_order(keys: &DataFrame, sorted: usize) -> bool {
    /// How many rows of one run are compared with each other at most.
    const RUN_COMPARED: usize = 64;
    let Some(mut columns) = keys
        .columns()
        .iter()
        .map(key_cells)
        .collect::<Option<Vec<_>>>()
    else {
        return false;
    };
    // The sorted cells of the run's rows, and the rest of each of its rows.
    let mut head: Vec<KeyCell> = Vec::with_capacity(sorted);
    let mut run: Vec<KeyCell> = Vec::new();
    let mut row: Vec<KeyCell> = Vec::with_capacity(columns.len());
    let mut started = false;
    loop {
        row.clear();
        for column in &mut columns {
            match column.next() {
                Some(cell) => row.push(cell),
                None => return true,
            }
        }
        let Some((sorted_cells, rest)) = row.split_at_checked(sorted) else {
            return false;
        };
        match started.then(|| head.as_slice().cmp(sorted_cells)) {
            Some(std::cmp::Ordering::Greater) => return false,
            Some(std::cmp::Ordering::Equal) => {
                if rest.is_empty()
                    || run.len() >= rest.len() * RUN_COMPARED
                    || run.chunks_exact(rest.len()).any(|earlier| earlier == rest)
                {
                    return false;
                }
            }
            Some(std::cmp::Ordering::Less) | None => {
                head.clear();
                head.extend_from_slice(sorted_cells);
                run.clear();
            }
        }
        run.extend_from_slice(rest);
        started = true;
    }
}

/// A key column's cells one by one, each kind iterated as itself (a boxed
/// iterator cost a call per cell, four a row of 5.6 M image tags at a
/// million AMIs).
enum KeyCells<T, N, F> {
    Text(T),
    Number(N),
    Flag(F),
}

/// The cells of a key column of a kind the walk compares, else None.
fn key_cells(
    column: &Column,
) -> Option<
    KeyCells<
        impl Iterator<Item = Option<&str>>,
        impl Iterator<Item = Option<i64>>,
        impl Iterator<Item = Option<bool>>,
    >,
> {
    Some(match column.dtype() {
        DataType::String => KeyCells::Text(column.str().ok()?.iter()),
        DataType::Int64 => KeyCells::Number(column.i64().ok()?.iter()),
        DataType::Boolean => KeyCells::Flag(column.bool().ok()?.iter()),
        _ => return None,
    })
}

impl<'a, T, N, F> Iterator for KeyCells<T, N, F>
where
    T: Iterator<Item = Option<&'a str>>,
    N: Iterator<Item = Option<i64>>,
    F: Iterator<Item = Option<bool>>,
{
    type Item = KeyCell<'a>;

    fn next(&mut self) -> Option<KeyCell<'a>> {
        Some(match self {
            KeyCells::Text(cells) => cells.next()?.map_or(KeyCell::Null, KeyCell::Text),
            KeyCells::Number(cells) => cells.next()?.map_or(KeyCell::Null, KeyCell::Number),
            KeyCells::Flag(cells) => cells.next()?.map_or(KeyCell::Null, KeyCell::Flag),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Row<'a> = (&'a str, &'a str, &'a str, Option<&'a str>);

    fn tags(rows: &[Row]) -> DataFrame {
        let column =
            |f: for<'r> fn(&Row<'r>) -> Option<&'r str>| rows.iter().map(f).collect::<Vec<_>>();
        df!(
            "account_id" => column(|r| Some(r.0)),
            "region" => column(|r| Some(r.1)),
            "image_id" => column(|r| Some(r.2)),
            "key" => column(|r| r.3),
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    /// The row of the first over-long cell, counted across chunks; nulls
    /// and cells of exactly the limit pass.
    #[test]
    fn the_first_too_long_cell_is_found_by_row_across_chunks() {
        let limit = "x".repeat(MAX_TEXT_BYTES);
        let long = "y".repeat(MAX_TEXT_BYTES + 1);
        let first = StringChunked::from_iter_options(
            "c".into(),
            [Some("a"), None, Some(limit.as_str())].into_iter(),
        );
        assert_eq!(first_too_long(&first), None);
        let second = StringChunked::from_iter_options(
            "c".into(),
            [Some("b"), Some(long.as_str()), Some(long.as_str())].into_iter(),
        );
        let mut both = first.clone();
        both.append(&second).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(both.chunks().len(), 2);
        assert_eq!(first_too_long(&both), Some((4, MAX_TEXT_BYTES + 1)));
    }

    #[test]
    fn keys_are_proven_distinct_only_in_stored_order() {
        // Sorted by account, region, image; a resource's tags in any order.
        let stored = tags(&[
            ("1", "eu", "ami-1", Some("Owner")),
            ("1", "eu", "ami-1", None),
            ("1", "eu", "ami-1", Some("Name")),
            ("1", "eu", "ami-2", Some("Name")),
            ("2", "ap", "ami-0", Some("Name")),
        ]);
        assert!(unique_in_stored_order(&stored, 3));
        let repeated = tags(&[
            ("1", "eu", "ami-1", Some("A")),
            ("1", "eu", "ami-1", Some("B")),
            ("1", "eu", "ami-1", Some("A")),
        ]);
        assert!(!unique_in_stored_order(&repeated, 3));
        let nulls = tags(&[("1", "eu", "ami-1", None), ("1", "eu", "ami-1", None)]);
        assert!(
            !unique_in_stored_order(&nulls, 3),
            "two null keys are the same key"
        );
        let unsorted = tags(&[
            ("1", "eu", "ami-2", Some("A")),
            ("1", "eu", "ami-1", Some("A")),
        ]);
        assert!(!unique_in_stored_order(&unsorted, 3));
        let long_run: Vec<String> = (0..65).map(|i| format!("k{i}")).collect();
        let long_run: Vec<Row> = long_run
            .iter()
            .map(|k| ("1", "eu", "ami-1", Some(k.as_str())))
            .collect();
        assert!(
            !unique_in_stored_order(&tags(&long_run), 3),
            "left to the group-by"
        );
        assert!(unique_in_stored_order(&tags(&long_run[..64]), 3));
        let numbers = df!("depth" => [1i64, 2, 3]).unwrap_or_else(|e| panic!("{e}"));
        assert!(unique_in_stored_order(&numbers, 1));
        // A key that is all stored order: a row equal to the one before is
        // a repeat, whatever its kind.
        let repeat = df!("depth" => [1i64, 2, 2]).unwrap_or_else(|e| panic!("{e}"));
        assert!(!unique_in_stored_order(&repeat, 1));
        let flags = df!("f" => [Some(false), None, None]).unwrap_or_else(|e| panic!("{e}"));
        assert!(!unique_in_stored_order(&flags, 1));
        assert!(unique_in_stored_order(&flags.head(Some(2)), 1));
        assert!(!unique_in_stored_order(&stored, 4), "not sorted on `key`");
        let unsupported = df!("x" => [1.0f64, 2.0]).unwrap_or_else(|e| panic!("{e}"));
        assert!(!unique_in_stored_order(&unsupported, 1));
    }

    #[test]
    fn a_repeated_key_is_found_in_any_order() {
        let def = crate::inventory::schema::TABLES
            .iter()
            .find(|d| d.name == "image_tags")
            .unwrap_or_else(|| panic!("image_tags"));
        let stored = tags(&[
            ("1", "eu", "ami-1", Some("A")),
            ("1", "eu", "ami-1", Some("B")),
            ("1", "eu", "ami-2", Some("A")),
        ]);
        assert!(check_keys(def, &stored, &Origin::Memory).is_ok());
        // Out of stored order, the repeat two rows apart.
        let shuffled = tags(&[
            ("1", "eu", "ami-1", Some("B")),
            ("1", "eu", "ami-2", Some("A")),
            ("1", "eu", "ami-1", Some("B")),
        ]);
        let error = check_keys(def, &shuffled, &Origin::Memory)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            error.contains("row 3: duplicate row") && error.contains("as row 1"),
            "{error}"
        );
    }
}
