//! Reading table files (JSON Lines, Parquet) into checked DataFrames.

#![allow(
    clippy::indexing_slicing,
    reason = "each index is a column_index of the table definition that sized the row"
)]

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::Path;

use chrono::DateTime;
use polars::prelude::*;

use super::builder::{TableBuilder, dtype_of, timestamp_dtype};
use super::schema::{ColumnKind, TableDef, Value};
use super::validate::{self, Origin};
use crate::error::{Error, Result, polars_message, strip_serde_position};

/// One table file to read, as a manifest lists it.
pub struct TableFile<'a> {
    pub def: &'static TableDef,
    pub path: &'a Path,
    /// What messages name: where the user put it, when `path` is a copy.
    pub shown: &'a Path,
    /// The schema version it was written with.
    pub version: u32,
    /// The rows the manifest says it holds. A file with more is refused
    /// before they are decoded, so a small file cannot make the audit hold
    /// far more than its manifest declares.
    pub rows: u64,
}

/// Reads one table file into a checked DataFrame.
pub fn table(file: &TableFile) -> Result<DataFrame> {
    let TableFile { path, shown, .. } = *file;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if name.ends_with(".jsonl") {
        jsonl(file)
    } else if name.ends_with(".parquet") {
        parquet(file)
    } else {
        Err(Error::input(format!(
            "{}: unsupported table file type (use .parquet or .jsonl)",
            shown.display()
        )))
    }
}

fn more_rows_than_declared(shown: &Path, rows: u64) -> Error {
    Error::input(format!(
        "{}: holds more than the {rows} rows manifest.json says",
        shown.display()
    ))
}

fn jsonl(file: &TableFile) -> Result<DataFrame> {
    let TableFile {
        def,
        path,
        shown,
        version,
        rows,
    } = *file;
    let file = fs::File::open(path).map_err(|e| Error::io(shown, e))?;
    let mut builder = TableBuilder::new(def);
    let mut lines: Vec<usize> = Vec::new();
    for (index, line) in BufReader::new(file).lines().enumerate() {
        let line_no = index + 1;
        let line = line.map_err(|e| Error::io(shown, e))?;
        if line.trim().is_empty() {
            continue;
        }
        let at = |msg: String| Error::input(format!("{}:{line_no}: {msg}", shown.display()));
        let object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&line)
            .map_err(|e| {
                Error::input(format!(
                    "{}:{line_no}:{}: invalid JSON: {}",
                    shown.display(),
                    e.column(),
                    strip_serde_position(&e.to_string())
                ))
            })?;
        let mut row = vec![Value::Null; def.columns.len()];
        for (key, json) in object {
            let idx = def
                .column_index(&key)
                .filter(|i| def.columns[*i].since <= version)
                .ok_or_else(|| at(format!("unknown column `{key}` for table `{}`", def.name)))?;
            let column = &def.columns[idx];
            row[idx] = json_to_value(column.kind, json).map_err(|found| {
                at(format!(
                    "column `{key}` expects {}, found {found}",
                    column.kind.name()
                ))
            })?;
        }
        if lines.len() as u64 == rows {
            return Err(more_rows_than_declared(shown, rows));
        }
        builder.push_values(row).map_err(|e| at(e.message))?;
        lines.push(line_no);
    }
    let df = builder.finish()?;
    validate::check(def, &df, &Origin::Lines { path: shown, lines })?;
    Ok(df)
}

fn json_to_value(kind: ColumnKind, json: serde_json::Value) -> Result<Value, String> {
    use serde_json::Value as J;
    match (kind, json) {
        (_, J::Null) => Ok(Value::Null),
        (ColumnKind::Str, J::String(s)) => Ok(Value::Str(s)),
        (ColumnKind::Int, J::Number(n)) => n.as_i64().map(Value::Int).ok_or(format!("`{n}`")),
        (ColumnKind::Bool, J::Bool(b)) => Ok(Value::Bool(b)),
        (ColumnKind::Timestamp, J::String(s)) => DateTime::parse_from_rfc3339(&s)
            .map(|t| Value::Timestamp(t.timestamp_millis()))
            .map_err(|_| format!("`{s}` (use RFC 3339, e.g. 2026-03-01T12:00:00Z)")),
        (_, other) => Err(match other {
            J::String(s) => format!("string `{s}`"),
            J::Number(n) => format!("number `{n}`"),
            J::Bool(b) => format!("boolean `{b}`"),
            J::Array(_) => "an array".to_string(),
            J::Object(_) => "an object".to_string(),
            J::Null => "null".to_string(),
        }),
    }
}

/// How much a Parquet file's pages may decompress to: this much, plus
/// [`PARQUET_INFLATION`] times the file's own size. Far above what a
/// table amiaudit writes inflates by (zstd on AWS ids, about 10 times).
const PARQUET_DECOMPRESSED_ALLOWANCE: u64 = 64 << 20;
const PARQUET_INFLATION: u64 = 256;

/// What the pages of a Parquet file say they decompress to, read from each
/// page's own header (the size its decompression is given), not from the
/// footer's totals, which nothing checks.
fn pages_decompressed_size(
    bytes: &[u8],
    footer: &polars_io::parquet::read::FileMetadata,
) -> std::result::Result<u64, String> {
    use polars_parquet_format::PageHeader;
    use polars_parquet_format::thrift::protocol::TCompactInputProtocol;
    let mut total: u64 = 0;
    for column in footer.row_groups.iter().flat_map(|g| g.parquet_columns()) {
        let range = column.byte_range();
        let chunk = usize::try_from(range.start)
            .ok()
            .zip(usize::try_from(range.end).ok())
            .and_then(|(start, end)| bytes.get(start..end))
            .ok_or("a column chunk lies outside the file")?;
        let mut cursor = std::io::Cursor::new(chunk);
        while cursor.position() < chunk.len() as u64 {
            let mut protocol = TCompactInputProtocol::new(&mut cursor, 1 << 20);
            let header = PageHeader::read_from_in_protocol(&mut protocol)
                .map_err(|e| format!("a page header cannot be read ({e})"))?;
            let compressed = u64::try_from(header.compressed_page_size)
                .map_err(|_| "a page header gives a negative size")?;
            let uncompressed = u64::try_from(header.uncompressed_page_size)
                .map_err(|_| "a page header gives a negative size")?;
            total = total.saturating_add(uncompressed);
            cursor.set_position(cursor.position().saturating_add(compressed));
        }
    }
    Ok(total)
}

fn parquet(file: &TableFile) -> Result<DataFrame> {
    let TableFile {
        def,
        path,
        shown,
        version,
        rows,
    } = *file;
    use polars_io::SerReader;
    let unreadable = |message: String| {
        Error::input(format!(
            "{}: not a readable Parquet file: {message}",
            shown.display()
        ))
    };
    // The whole file, once: its footer and page headers are checked
    // before any page is decoded.
    let (file, file_bytes) = crate::error::open_regular_file(path, "not found")?;
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut std::io::Read::take(file, file_bytes), &mut bytes)
        .map_err(|e| Error::io(shown, e))?;
    // polars panics on some encodings it does not support; a bad file is
    // bad input, never a crash.
    let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut reader =
            polars_io::parquet::read::ParquetReader::new(std::io::Cursor::new(bytes.as_slice()));
        let (declared_rows, decompressed) = {
            let footer = reader.get_metadata()?;
            let decompressed = pages_decompressed_size(&bytes, footer);
            (footer.num_rows as u64, decompressed)
        };
        if declared_rows > rows {
            return Ok(Err(more_rows_than_declared(shown, rows)));
        }
        let decompressed = match decompressed {
            Ok(size) => size,
            Err(why) => return Ok(Err(unreadable(why.to_string()))),
        };
        let allowed = PARQUET_DECOMPRESSED_ALLOWANCE + PARQUET_INFLATION * file_bytes;
        if decompressed > allowed {
            return Ok(Err(Error::input(format!(
                "{}: decompresses to {} MiB from {} KiB, more than amiaudit reads from a file that size; it was not written by amiaudit",
                shown.display(),
                decompressed >> 20,
                file_bytes >> 10
            ))));
        }
        reader.finish().map(Ok)
    }));
    let df = match read {
        Ok(Ok(Ok(df))) => df,
        Ok(Ok(Err(refused))) => return Err(refused),
        Ok(Err(e)) => return Err(unreadable(polars_message(&e))),
        Err(panic) => return Err(unreadable(crate::error::panic_message(panic.as_ref()))),
    };
    let height = df.height();
    let mut columns = Vec::with_capacity(def.columns.len());
    for column in def.columns {
        let Ok(found) = df.column(column.name) else {
            if column.since > version {
                columns.push(Column::full_null(
                    PlSmallStr::from_static(column.name),
                    height,
                    &dtype_of(column.kind),
                ));
                continue;
            }
            return Err(Error::input(format!(
                "{}: column `{}` is missing",
                shown.display(),
                column.name
            )));
        };
        columns.push(coerce(shown, column.name, column.kind, found)?);
    }
    if let Some(extra) = df
        .get_column_names()
        .into_iter()
        .find(|n| def.column(n.as_str()).is_none_or(|c| c.since > version))
    {
        return Err(Error::input(format!(
            "{}: unknown column `{extra}` for table `{}`",
            shown.display(),
            def.name
        )));
    }
    let df = DataFrame::new(height, columns).map_err(|e| Error::Internal(polars_message(&e)))?;
    validate::check(def, &df, &Origin::Rows { path: shown })?;
    Ok(df)
}

/// Accepts any Parquet physical encoding of a column's logical type
/// (dictionary-encoded or view strings, narrower integers, other time units
/// or time zones) and casts it to the schema type.
fn coerce(shown: &Path, name: &str, kind: ColumnKind, found: &Column) -> Result<Column> {
    let want = dtype_of(kind);
    let dtype = found.dtype();
    let compatible = match kind {
        ColumnKind::Str => matches!(dtype, DataType::String | DataType::Categorical(..)),
        ColumnKind::Int => dtype.is_integer(),
        ColumnKind::Bool => matches!(dtype, DataType::Boolean),
        ColumnKind::Timestamp => matches!(dtype, DataType::Datetime(..) | DataType::Date),
    } || matches!(dtype, DataType::Null);
    if !compatible {
        return Err(Error::input(format!(
            "{}: column `{name}` has type {dtype}, expected {}",
            shown.display(),
            kind.name()
        )));
    }
    let cast = |target: &DataType| {
        found.strict_cast(target).map_err(|e| {
            Error::input(format!(
                "{}: column `{name}` cannot be read as {}: {}",
                shown.display(),
                kind.name(),
                polars_message(&e)
            ))
        })
    };
    match dtype {
        // A zone only labels the instant; the stored value is UTC already.
        DataType::Datetime(unit, Some(_)) => {
            let naive = cast(&DataType::Datetime(*unit, None))?;
            naive
                .strict_cast(&timestamp_dtype())
                .map_err(|e| Error::Internal(polars_message(&e)))
        }
        _ if dtype == &want => Ok(found.clone()),
        _ => cast(&want),
    }
}
