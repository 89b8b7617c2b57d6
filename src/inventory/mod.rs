//! The inventory: what was collected, as relational tables.
//!
//! Owns the on-disk format (a directory with one file per table and a
//! `manifest.json`), loading it into polars DataFrames with every column
//! checked against [`schema`], and writing it back. Nothing here knows about
//! AWS or about rules: the collector and `synth` fill a [`TableBuilder`], the
//! evaluator reads [`Inventory::frames`].
//!
//! **Architecture invariant:** an inventory that loads is complete and
//! well-typed: every schema table is present, every column has its schema
//! type, required columns have no nulls, and each file's sha256 matches the
//! manifest.

pub mod schema;

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result, polars_message};
use schema::{ColumnKind, SCHEMA_VERSION, TABLES, TableDef};

pub const MANIFEST_FILE: &str = "manifest.json";

/// What was audited and when: the first file an auditor reads.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub schema_version: u32,
    /// When collection ended; "now" for every rule evaluated on this inventory.
    pub collected_at: DateTime<Utc>,
    pub tool_version: String,
    pub scope: Scope,
    /// When a live scan started and ended (absent for synthetic inventories).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scan_started_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scan_ended_at: Option<DateTime<Utc>>,
    /// False when the scan was interrupted before it visited everything in scope.
    pub complete: bool,
    pub tables: BTreeMap<String, TableEntry>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scope {
    /// Where the account list came from: `organizations`, `accounts`, `synthetic`.
    pub source: String,
    pub organization_id: Option<String>,
    pub management_account_id: Option<String>,
    /// ARN of the identity that ran the scan (never a credential).
    pub caller_arn: Option<String>,
    pub accounts: Vec<String>,
    pub regions: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableEntry {
    pub file: String,
    pub sha256: String,
    pub rows: u64,
}

/// On-disk format of the table files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TableFormat {
    /// Apache Parquet: compact and fast; what scans write by default.
    Parquet,
    /// JSON Lines: one object per row, readable and diffable.
    Jsonl,
}

impl TableFormat {
    fn extension(self) -> &'static str {
        match self {
            TableFormat::Parquet => "parquet",
            TableFormat::Jsonl => "jsonl",
        }
    }
}

/// A loaded inventory: the manifest and one DataFrame per schema table.
#[derive(Debug, Clone)]
pub struct Inventory {
    pub manifest: Manifest,
    pub tables: BTreeMap<&'static str, DataFrame>,
}

impl Inventory {
    pub fn table(&self, name: &str) -> &DataFrame {
        // Every schema table is present by the load invariant.
        &self.tables[name]
    }

    pub fn collected_at_ms(&self) -> i64 {
        self.manifest.collected_at.timestamp_millis()
    }

    /// Every table as a LazyFrame, with the derived columns of
    /// [`schema::DERIVED`] added and the one-row `audit` table.
    pub fn frames(&self) -> BTreeMap<String, LazyFrame> {
        let now = self.collected_at_ms();
        let days =
            |c: &str| (lit(now) - col(c).cast(DataType::Int64)).floor_div(lit(86_400_000i64));
        let mut out = BTreeMap::new();
        for (name, df) in &self.tables {
            let mut lf = df.clone().lazy();
            match *name {
                "images" => {
                    lf = lf.with_columns([
                        days("creation_date").alias("age_days"),
                        (col("deprecation_time")
                            .cast(DataType::Int64)
                            .lt_eq(lit(now)))
                        .fill_null(lit(false))
                        .alias("deprecated"),
                        days("last_launched_time").alias("days_since_last_launch"),
                        col("name")
                            .str()
                            .replace_all(lit(FAMILY_SUFFIX), lit(""), false)
                            .alias("family"),
                    ])
                }
                "inspector_findings" => {
                    lf = lf.with_columns([days("first_observed_at").alias("open_days")])
                }
                _ => {}
            }
            out.insert(name.to_string(), lf);
        }
        let audit = df!(
            "collected_at" => [now],
            "organization_id" => [self.manifest.scope.organization_id.clone()],
        )
        .expect("one-row frame of equal-length columns")
        .lazy()
        .with_column(col("collected_at").cast(DataType::Datetime(TimeUnit::Milliseconds, None)));
        out.insert("audit".to_string(), audit);
        out
    }
}

/// The trailing date and version tokens removed from an image name to get
/// its family: `-20260301-v3`, `-2025-03-01-v1`, `_v12`, `.3`.
pub const FAMILY_SUFFIX: &str = r"([-_.]v?\d+)+$";

/// A value for one cell while building a table.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Str(String),
    Int(i64),
    Bool(bool),
    /// Milliseconds since the Unix epoch, UTC.
    Timestamp(i64),
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(s.to_string())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(s)
    }
}
impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}
impl From<DateTime<Utc>> for Value {
    fn from(t: DateTime<Utc>) -> Self {
        Value::Timestamp(t.timestamp_millis())
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

enum ColumnBuffer {
    Str(Vec<Option<String>>),
    Int(Vec<Option<i64>>),
    Bool(Vec<Option<bool>>),
    Timestamp(Vec<Option<i64>>),
}

/// Builds one schema table row by row, checking types as it goes.
pub struct TableBuilder {
    def: &'static TableDef,
    columns: Vec<ColumnBuffer>,
    rows: usize,
}

impl TableBuilder {
    pub fn new(table: &str) -> Self {
        let def = schema::table(table).unwrap_or_else(|| panic!("no schema table `{table}`"));
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

    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Appends a row given as (column, value) pairs; columns not named are null.
    /// Errors name the column; the caller adds the file and line.
    pub fn push<V: Into<Value>>(
        &mut self,
        cells: impl IntoIterator<Item = (&'static str, V)>,
    ) -> Result<(), String> {
        let mut row: Vec<Value> = vec![Value::Null; self.def.columns.len()];
        for (name, value) in cells {
            let idx = self.index_of(name)?;
            row[idx] = value.into();
        }
        self.push_values(row)
    }

    fn index_of(&self, name: &str) -> Result<usize, String> {
        self.def
            .columns
            .iter()
            .position(|c| c.name == name)
            .ok_or_else(|| format!("unknown column `{name}` for table `{}`", self.def.name))
    }

    /// Appends a row given in schema column order.
    pub fn push_values(&mut self, row: Vec<Value>) -> Result<(), String> {
        // Check the whole row first so a bad row leaves the buffers aligned.
        for (def, value) in self.def.columns.iter().zip(&row) {
            let ok = matches!(
                (def.kind, value),
                (_, Value::Null)
                    | (ColumnKind::Str, Value::Str(_))
                    | (ColumnKind::Int, Value::Int(_))
                    | (ColumnKind::Bool, Value::Bool(_))
                    | (ColumnKind::Timestamp, Value::Timestamp(_))
            );
            if !ok {
                return Err(format!("column `{}` expects {}", def.name, def.kind.name()));
            }
            if def.required && *value == Value::Null {
                return Err(format!("column `{}` is required", def.name));
            }
        }
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
        Ok(())
    }

    pub fn finish(self) -> DataFrame {
        let columns: Vec<Column> = self
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
                        .expect("i64 casts to datetime"),
                };
                series.into_column()
            })
            .collect();
        DataFrame::new(self.rows, columns).expect("columns of equal length")
    }
}

pub fn timestamp_dtype() -> DataType {
    DataType::Datetime(TimeUnit::Milliseconds, None)
}

fn dtype_of(kind: ColumnKind) -> DataType {
    match kind {
        ColumnKind::Str => DataType::String,
        ColumnKind::Int => DataType::Int64,
        ColumnKind::Bool => DataType::Boolean,
        ColumnKind::Timestamp => timestamp_dtype(),
    }
}

/// An empty inventory of the right schema (for dry-running rules).
pub fn empty(collected_at: DateTime<Utc>) -> Inventory {
    let tables = TABLES
        .iter()
        .map(|t| (t.name, TableBuilder::new(t.name).finish()))
        .collect();
    Inventory {
        manifest: Manifest {
            schema_version: SCHEMA_VERSION,
            collected_at,
            tool_version: crate::VERSION.to_string(),
            scope: Scope::default(),
            scan_started_at: None,
            scan_ended_at: None,
            complete: true,
            tables: BTreeMap::new(),
        },
        tables,
    }
}

/// Hex sha256 of a file, streamed.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file = fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(|e| Error::io(path, e))?;
    Ok(hex::encode(hasher.finalize()))
}

/// Loads and checks an inventory directory.
pub fn load(dir: &Path) -> Result<Inventory> {
    if !dir.is_dir() {
        return Err(Error::input(format!(
            "{}: inventory directory not found (give the folder that holds manifest.json)",
            dir.display()
        )));
    }
    let manifest_path = dir.join(MANIFEST_FILE);
    let text = fs::read_to_string(&manifest_path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::input(format!(
                "{}: not found; an inventory directory needs a manifest.json (write one with `amiaudit scan` or `amiaudit synth`)",
                manifest_path.display()
            ))
        } else {
            Error::io(&manifest_path, e)
        }
    })?;
    let manifest: Manifest = serde_json::from_str(&text).map_err(|e| {
        Error::input(format!(
            "{}:{}:{}: invalid manifest: {}",
            manifest_path.display(),
            e.line(),
            e.column(),
            strip_serde_position(&e.to_string())
        ))
    })?;
    if manifest.schema_version != SCHEMA_VERSION {
        return Err(Error::input(format!(
            "{}: schema version {} is not supported; this amiaudit reads version {SCHEMA_VERSION} (use the amiaudit release that wrote it, or re-scan)",
            manifest_path.display(),
            manifest.schema_version
        )));
    }
    for name in manifest.tables.keys() {
        if schema::table(name).is_none() {
            return Err(Error::input(format!(
                "{}: unknown table `{name}` (known tables: {})",
                manifest_path.display(),
                TABLES.iter().map(|t| t.name).collect::<Vec<_>>().join(", ")
            )));
        }
    }
    let mut tables = BTreeMap::new();
    for def in TABLES {
        let entry = manifest.tables.get(def.name).ok_or_else(|| {
            Error::input(format!(
                "{}: table `{}` is missing from the manifest",
                manifest_path.display(),
                def.name
            ))
        })?;
        let path = dir.join(&entry.file);
        if !path.is_file() {
            return Err(Error::input(format!(
                "{}: table file not found (listed for `{}` in manifest.json)",
                path.display(),
                def.name
            )));
        }
        let digest = sha256_file(&path)?;
        if digest != entry.sha256 {
            return Err(Error::input(format!(
                "{}: sha256 does not match manifest.json; the file changed after it was written (restore it, or re-run the scan)",
                path.display()
            )));
        }
        let df = if entry.file.ends_with(".jsonl") {
            read_jsonl(def, &path)?
        } else if entry.file.ends_with(".parquet") {
            read_parquet(def, &path)?
        } else {
            return Err(Error::input(format!(
                "{}: unsupported table file type (use .parquet or .jsonl)",
                path.display()
            )));
        };
        if df.height() as u64 != entry.rows {
            return Err(Error::input(format!(
                "{}: holds {} rows but manifest.json says {}",
                path.display(),
                df.height(),
                entry.rows
            )));
        }
        tables.insert(def.name, df);
    }
    Ok(Inventory { manifest, tables })
}

/// serde_json appends " at line L column C"; we print the position first.
fn strip_serde_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

fn read_jsonl(def: &'static TableDef, path: &Path) -> Result<DataFrame> {
    let file = fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut builder = TableBuilder::new(def.name);
    for (index, line) in BufReader::new(file).lines().enumerate() {
        let line_no = index + 1;
        let line = line.map_err(|e| Error::io(path, e))?;
        if line.trim().is_empty() {
            continue;
        }
        let at = |msg: String| Error::input(format!("{}:{line_no}: {msg}", path.display()));
        let object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&line)
            .map_err(|e| {
                Error::input(format!(
                    "{}:{line_no}:{}: invalid JSON: {}",
                    path.display(),
                    e.column(),
                    strip_serde_position(&e.to_string())
                ))
            })?;
        let mut row = vec![Value::Null; def.columns.len()];
        for (key, json) in object {
            let idx = def
                .columns
                .iter()
                .position(|c| c.name == key)
                .ok_or_else(|| at(format!("unknown column `{key}` for table `{}`", def.name)))?;
            let column = &def.columns[idx];
            row[idx] = json_to_value(column.kind, json).map_err(|found| {
                at(format!(
                    "column `{key}` expects {}, found {found}",
                    column.kind.name()
                ))
            })?;
        }
        builder.push_values(row).map_err(at)?;
    }
    Ok(builder.finish())
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

fn read_parquet(def: &'static TableDef, path: &Path) -> Result<DataFrame> {
    use polars_io::SerReader;
    let file = fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let df = polars_io::parquet::read::ParquetReader::new(file)
        .finish()
        .map_err(|e| {
            Error::input(format!(
                "{}: not a readable Parquet file: {}",
                path.display(),
                polars_message(&e)
            ))
        })?;
    let mut columns = Vec::with_capacity(def.columns.len());
    for column in def.columns {
        let found = df.column(column.name).map_err(|_| {
            Error::input(format!(
                "{}: column `{}` is missing",
                path.display(),
                column.name
            ))
        })?;
        let want = dtype_of(column.kind);
        if found.dtype() != &want && !(found.dtype() == &DataType::Null) {
            return Err(Error::input(format!(
                "{}: column `{}` has type {}, expected {}",
                path.display(),
                column.name,
                found.dtype(),
                column.kind.name()
            )));
        }
        let found = found
            .cast(&want)
            .map_err(|e| Error::Internal(polars_message(&e)))?;
        if column.required && found.null_count() > 0 {
            return Err(Error::input(format!(
                "{}: column `{}` is required but has {} null values",
                path.display(),
                column.name,
                found.null_count()
            )));
        }
        columns.push(found);
    }
    if let Some(extra) = df
        .get_column_names()
        .into_iter()
        .find(|n| def.column(n.as_str()).is_none())
    {
        return Err(Error::input(format!(
            "{}: unknown column `{extra}` for table `{}`",
            path.display(),
            def.name
        )));
    }
    DataFrame::new(df.height(), columns).map_err(|e| Error::Internal(polars_message(&e)))
}

/// Writes every table and the manifest into `dir` (created if needed).
/// The manifest's table entries are recomputed from what was written.
pub fn save(inventory: &Inventory, dir: &Path, format: TableFormat) -> Result<Manifest> {
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut manifest = inventory.manifest.clone();
    manifest.tables.clear();
    for def in TABLES {
        let file = format!("{}.{}", def.name, format.extension());
        let path = dir.join(&file);
        // Stored in (account, region, resource) order, the order results are
        // reported in: most rule results then need no sort of their own.
        let mut keys = vec!["account_id"];
        if def.column("region").is_some() {
            keys.push("region");
        }
        if !keys.contains(&def.resource_id) {
            keys.push(def.resource_id);
        }
        let mut df = inventory
            .table(def.name)
            .sort(
                keys,
                SortMultipleOptions::default()
                    .with_nulls_last(true)
                    .with_maintain_order(true),
            )
            .map_err(|e| Error::Internal(polars_message(&e)))?;
        match format {
            TableFormat::Parquet => write_parquet(&mut df, &path)?,
            TableFormat::Jsonl => write_jsonl(def, &df, &path)?,
        }
        manifest.tables.insert(
            def.name.to_string(),
            TableEntry {
                file,
                sha256: sha256_file(&path)?,
                rows: df.height() as u64,
            },
        );
    }
    let path = dir.join(MANIFEST_FILE);
    let mut text =
        serde_json::to_string_pretty(&manifest).map_err(|e| Error::Internal(e.to_string()))?;
    text.push('\n');
    fs::write(&path, text).map_err(|e| Error::io(&path, e))?;
    Ok(manifest)
}

fn write_parquet(df: &mut DataFrame, path: &Path) -> Result<()> {
    let file = fs::File::create(path).map_err(|e| Error::io(path, e))?;
    polars_io::parquet::write::ParquetWriter::new(BufWriter::new(file))
        .finish(df)
        .map_err(|e| Error::Internal(format!("{}: {}", path.display(), polars_message(&e))))?;
    Ok(())
}

fn write_jsonl(def: &TableDef, df: &DataFrame, path: &Path) -> Result<()> {
    let file = fs::File::create(path).map_err(|e| Error::io(path, e))?;
    let mut out = BufWriter::new(file);
    let columns: Vec<&Column> = def
        .columns
        .iter()
        .map(|c| df.column(c.name).expect("schema column present"))
        .collect();
    for row in 0..df.height() {
        let mut object = serde_json::Map::new();
        for (def, column) in def.columns.iter().zip(&columns) {
            let value = column
                .get(row)
                .map_err(|e| Error::Internal(polars_message(&e)))?;
            let json = match value {
                AnyValue::Null => continue,
                AnyValue::String(s) => serde_json::Value::from(s),
                AnyValue::StringOwned(s) => serde_json::Value::from(s.as_str()),
                AnyValue::Int64(i) => serde_json::Value::from(i),
                AnyValue::Boolean(b) => serde_json::Value::from(b),
                AnyValue::Datetime(ms, _, _) | AnyValue::DatetimeOwned(ms, _, _) => {
                    serde_json::Value::from(format_timestamp(ms))
                }
                other => {
                    return Err(Error::Internal(format!(
                        "table `{}` column `{}`: unexpected value {other:?}",
                        def.name, def.name
                    )));
                }
            };
            object.insert(def.name.to_string(), json);
        }
        serde_json::to_writer(&mut out, &object).map_err(|e| Error::Internal(e.to_string()))?;
        out.write_all(b"\n").map_err(|e| Error::io(path, e))?;
    }
    out.flush().map_err(|e| Error::io(path, e))
}

/// RFC 3339 with a `Z`, seconds precision unless milliseconds are present.
pub fn format_timestamp(ms: i64) -> String {
    let t = Utc.timestamp_millis_opt(ms).single().unwrap_or_default();
    if ms % 1000 == 0 {
        t.to_rfc3339_opts(SecondsFormat::Secs, true)
    } else {
        t.to_rfc3339_opts(SecondsFormat::Millis, true)
    }
}

/// A string column's values (all `None` when the column is missing or not a string).
pub fn str_column(df: &DataFrame, name: &str) -> Vec<Option<String>> {
    match df.column(name).and_then(|c| c.str().cloned()) {
        Ok(ca) => ca.iter().map(|v| v.map(str::to_string)).collect(),
        Err(_) => vec![None; df.height()],
    }
}
