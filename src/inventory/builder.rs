//! Building a table row by row, typed as the schema says.

#![allow(
    clippy::indexing_slicing,
    reason = "each index is a column_index of the table definition that sized the row"
)]

use polars::prelude::*;

use super::schema::{self, ColumnKind, TableDef, TableRow, Value};
use crate::error::{Error, Result, polars_message};

enum ColumnBuffer {
    Str(Vec<Option<String>>),
    Int(Vec<Option<i64>>),
    Bool(Vec<Option<bool>>),
    Timestamp(Vec<Option<i64>>),
}

/// Why a cell was refused: which column, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CellError {
    pub column: &'static str,
    pub message: String,
}

impl std::fmt::Display for CellError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Builds one schema table row by row, checking every cell as it goes:
/// type, required, vocabulary and the timestamp range.
pub struct TableBuilder {
    def: &'static TableDef,
    columns: Vec<ColumnBuffer>,
    rows: usize,
}

/// Timestamps an inventory may hold: 1970-01-01 up to (not including)
/// 2200-01-01. Anything else is a corrupt or hostile value that would
/// overflow the day arithmetic rules rely on.
pub const TIMESTAMP_RANGE_MS: std::ops::Range<i64> = 0..7_258_118_400_000;

/// The longest text a cell may hold, in bytes. The longest AWS values an
/// inventory keeps (ARNs, names, descriptions, error messages) are a few
/// KiB; a longer one is a hostile file, refused before it is multiplied
/// across rows and reports.
pub const MAX_TEXT_BYTES: usize = 16 << 10;

impl TableBuilder {
    pub fn new(def: &'static TableDef) -> Self {
        let columns = def
            .columns
            .iter()
            .map(|c| match c.kind {
                ColumnKind::Str => ColumnBuffer::Str(Vec::new()),
                ColumnKind::Int => ColumnBuffer::Int(Vec::new()),
                ColumnKind::Bool => ColumnBuffer::Bool(Vec::new()),
                ColumnKind::Timestamp => ColumnBuffer::Timestamp(Vec::new()),
            })
            .collect();
        TableBuilder {
            def,
            columns,
            rows: 0,
        }
    }

    /// A builder for the table named `table`; an unknown name is an internal error.
    pub fn named(table: &str) -> Result<Self> {
        schema::table(table)
            .map(TableBuilder::new)
            .ok_or_else(|| Error::Internal(format!("no schema table `{table}`")))
    }

    pub fn def(&self) -> &'static TableDef {
        self.def
    }

    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Appends a typed row.
    pub fn push_row<R: TableRow>(&mut self, row: R) -> Result<(), CellError> {
        debug_assert_eq!(R::TABLE, self.def.name);
        self.push_values(row.into_values())
    }

    /// Appends a row given as (column, value) pairs; columns not named are null.
    pub fn push<V: Into<Value>>(
        &mut self,
        cells: impl IntoIterator<Item = (&'static str, V)>,
    ) -> Result<(), CellError> {
        let mut row: Vec<Value> = vec![Value::Null; self.def.columns.len()];
        for (name, value) in cells {
            let idx = self.def.column_index(name).ok_or_else(|| CellError {
                column: "",
                message: format!("unknown column `{name}` for table `{}`", self.def.name),
            })?;
            row[idx] = value.into();
        }
        self.push_values(row)
    }

    /// Checks one cell against its column: the error says what is wrong.
    pub fn check_cell(&self, index: usize, value: &Value) -> Result<(), CellError> {
        let def = &self.def.columns[index];
        let fail = |message: String| {
            Err(CellError {
                column: def.name,
                message,
            })
        };
        match (def.kind, value) {
            (_, Value::Null) if def.required => fail(format!("column `{}` is required", def.name)),
            (_, Value::Null) => Ok(()),
            (ColumnKind::Str, Value::Str(s)) if s.len() > MAX_TEXT_BYTES => fail(format!(
                "column `{}`: {} bytes of text; a cell holds at most {MAX_TEXT_BYTES}",
                def.name,
                s.len()
            )),
            (ColumnKind::Str, Value::Str(s)) => match def.vocabulary {
                Some(words) if !words.contains(&s.as_str()) => fail(format!(
                    "column `{}`: `{}` is not one of {}",
                    def.name,
                    s.escape_debug(),
                    words.join(", ")
                )),
                _ => Ok(()),
            },
            (ColumnKind::Int, Value::Int(_)) | (ColumnKind::Bool, Value::Bool(_)) => Ok(()),
            (ColumnKind::Timestamp, Value::Timestamp(ms)) if TIMESTAMP_RANGE_MS.contains(ms) => {
                Ok(())
            }
            (ColumnKind::Timestamp, Value::Timestamp(_)) => fail(format!(
                "column `{}`: timestamp outside 1970-01-01..2200-01-01",
                def.name
            )),
            _ => fail(format!("column `{}` expects {}", def.name, def.kind.name())),
        }
    }

    /// Appends a row given in schema column order.
    pub fn push_values(&mut self, row: Vec<Value>) -> Result<(), CellError> {
        if row.len() != self.def.columns.len() {
            return Err(CellError {
                column: "",
                message: format!(
                    "table `{}` has {} columns, the row {}",
                    self.def.name,
                    self.def.columns.len(),
                    row.len()
                ),
            });
        }
        // Check the whole row first so a bad row leaves the buffers aligned.
        for (index, value) in row.iter().enumerate() {
            self.check_cell(index, value)?;
        }
        self.append(row);
        Ok(())
    }

    /// Appends a row from a source that must not be lost (the scanner):
    /// an optional cell that breaks its column is stored as null (not
    /// known) and the problem returned, so the caller records it.
    pub fn push_lenient(&mut self, mut row: Vec<Value>) -> Result<Vec<CellError>, CellError> {
        let mut problems = Vec::new();
        if row.len() != self.def.columns.len() {
            return self.push_values(row).map(|()| problems);
        }
        for (index, value) in row.iter_mut().enumerate() {
            if let Err(problem) = self.check_cell(index, value) {
                if self.def.columns[index].required {
                    return Err(problem);
                }
                *value = Value::Null;
                problems.push(problem);
            }
        }
        self.append(row);
        Ok(problems)
    }

    fn append(&mut self, row: Vec<Value>) {
        for (buffer, value) in self.columns.iter_mut().zip(row) {
            match (buffer, value) {
                (ColumnBuffer::Str(v), Value::Str(s)) => v.push(Some(s)),
                (ColumnBuffer::Str(v), _) => v.push(None),
                (ColumnBuffer::Int(v), Value::Int(i)) => v.push(Some(i)),
                (ColumnBuffer::Int(v), _) => v.push(None),
                (ColumnBuffer::Bool(v), Value::Bool(b)) => v.push(Some(b)),
                (ColumnBuffer::Bool(v), _) => v.push(None),
                (ColumnBuffer::Timestamp(v), Value::Timestamp(t)) => v.push(Some(t)),
                (ColumnBuffer::Timestamp(v), _) => v.push(None),
            }
        }
        self.rows += 1;
    }

    pub fn finish(self) -> Result<DataFrame> {
        let columns = self
            .def
            .columns
            .iter()
            .zip(self.columns)
            .map(|(def, buffer)| {
                let name = PlSmallStr::from_static(def.name);
                let series = match buffer {
                    ColumnBuffer::Str(v) => Series::new(name, v),
                    ColumnBuffer::Int(v) => Series::new(name, v),
                    ColumnBuffer::Bool(v) => Series::new(name, v),
                    ColumnBuffer::Timestamp(v) => Series::new(name, v)
                        .cast(&timestamp_dtype())
                        .map_err(|e| Error::Internal(polars_message(&e)))?,
                };
                Ok(series.into_column())
            })
            .collect::<Result<Vec<Column>>>()?;
        DataFrame::new(self.rows, columns).map_err(|e| Error::Internal(polars_message(&e)))
    }
}

pub fn timestamp_dtype() -> DataType {
    DataType::Datetime(TimeUnit::Milliseconds, None)
}

pub fn dtype_of(kind: ColumnKind) -> DataType {
    match kind {
        ColumnKind::Str => DataType::String,
        ColumnKind::Int => DataType::Int64,
        ColumnKind::Bool => DataType::Boolean,
        ColumnKind::Timestamp => timestamp_dtype(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::schema::{ImageRow, Millis, RegionRow};

    fn builder(table: &str) -> TableBuilder {
        TableBuilder::named(table).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn typed_rows_push_and_finish() {
        let mut b = builder("images");
        let row = ImageRow {
            account_id: "111111111111".into(),
            region: "eu-west-1".into(),
            image_id: "ami-1".into(),
            state: Some("available".into()),
            creation_date: Some(Millis(1_700_000_000_000)),
            launch_permission_count: Some(0),
            ..Default::default()
        };
        assert_eq!(b.push_row(row), Ok(()));
        let df = b.finish().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(df.height(), 1);
        assert_eq!(
            df.width(),
            crate::inventory::schema::TABLES[2].columns.len()
        );
    }

    #[test]
    fn cells_outside_vocabulary_or_range_are_refused_and_nulled_when_lenient() {
        let mut b = builder("regions");
        let bad = RegionRow {
            account_id: "1".into(),
            region: "eu-west-1".into(),
            scan_status: "FAILED".into(),
            ..Default::default()
        };
        let err = b
            .push_row(bad.clone())
            .expect_err("capitalised status refused");
        assert!(err.message.contains("`FAILED` is not one of"), "{err}");
        // A required cell cannot be nulled: still refused when lenient.
        assert!(b.push_lenient(bad.into_values()).is_err());
        let mut images = builder("images");
        let row = ImageRow {
            account_id: "1".into(),
            region: "r".into(),
            image_id: "ami-1".into(),
            state: Some("exploded".into()),
            creation_date: Some(Millis(i64::MIN + 5)),
            ..Default::default()
        };
        let problems = images
            .push_lenient(row.into_values())
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            problems.iter().map(|p| p.column).collect::<Vec<_>>(),
            vec!["state", "creation_date"]
        );
        assert_eq!(images.len(), 1);
    }
}
