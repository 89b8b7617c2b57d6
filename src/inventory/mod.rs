//! The inventory: what was collected, as relational tables.
//!
//! Owns the on-disk format (a directory with one file per table and a
//! `manifest.json`), reading it into polars DataFrames with every cell
//! checked against [`schema`], upgrading older layouts, and writing it
//! back. Nothing here knows about AWS or about rules: the collector and
//! `synth` fill [`TableBuilder`]s and call [`Inventory::new`], the
//! evaluator reads [`Inventory::frames`].
//!
//! **Architecture invariant: loaded means valid.** An [`Inventory`] can only
//! be made by [`load`] or [`Inventory::new`], both of which check it whole:
//! every schema table present, every column of its schema type, required
//! columns without nulls, string columns inside their vocabulary, no two
//! rows with the same key, timestamps between 1970 and 2200, and (on load)
//! each file's sha256 equal to the manifest's. Derived columns and the
//! [`Coverage`] are computed once, there.

mod builder;
mod columns;
mod coverage;
mod derive;
mod read;
pub mod schema;
pub(crate) mod upgrade;
mod validate;
mod write;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use polars::prelude::*;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, polars_message};
pub use builder::{CellError, TIMESTAMP_RANGE_MS, TableBuilder, timestamp_dtype};
pub use columns::{
    bool_column, i64_column, optional_text_cells, rows_where, str_column, text_cells, text_rows,
};
pub use coverage::{Coverage, FailedCall, ScanStatus};
pub use schema::{Millis, SCHEMA_VERSION, TABLES, TableDef, TableRow, Value};
pub use write::save;

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
    /// Scan settings that limited what was read (e.g. `snapshot_permissions`),
    /// so a result left `unknown` by them can say why.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub settings: BTreeMap<String, String>,
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

impl Manifest {
    /// A manifest for an inventory built in memory (tables filled on save).
    pub fn new(collected_at: DateTime<Utc>, scope: Scope) -> Manifest {
        Manifest {
            schema_version: SCHEMA_VERSION,
            collected_at,
            tool_version: crate::VERSION.to_string(),
            scope,
            scan_started_at: None,
            scan_ended_at: None,
            complete: true,
            settings: BTreeMap::new(),
            tables: BTreeMap::new(),
        }
    }
}

/// On-disk format of the table files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableFormat {
    /// Apache Parquet: compact and fast; what scans write by default.
    Parquet,
    /// JSON Lines: one object per row, readable and diffable.
    Jsonl,
}

impl TableFormat {
    pub const NAMES: [&'static str; 2] = ["parquet", "jsonl"];

    pub fn parse(text: &str) -> Option<TableFormat> {
        match text {
            "parquet" => Some(TableFormat::Parquet),
            "jsonl" => Some(TableFormat::Jsonl),
            _ => None,
        }
    }

    fn extension(self) -> &'static str {
        match self {
            TableFormat::Parquet => "parquet",
            TableFormat::Jsonl => "jsonl",
        }
    }
}

/// A checked inventory: the manifest, one DataFrame per schema table (with
/// its derived columns), and its coverage.
#[derive(Debug, Clone)]
pub struct Inventory {
    manifest: Manifest,
    tables: BTreeMap<&'static str, DataFrame>,
    /// Tables computed at load from the others: the usage model
    /// (`launches`, `consumer_gaps`, `image_consumer_gaps`, `image_uses`,
    /// `image_use_gaps`).
    derived: BTreeMap<&'static str, DataFrame>,
    coverage: Coverage,
}

impl Inventory {
    /// Checks tables built in memory (by the scanner or `synth`) as loading
    /// checks files, adds derived columns and computes coverage. Every
    /// schema table must be present.
    pub fn new(manifest: Manifest, tables: BTreeMap<&'static str, DataFrame>) -> Result<Inventory> {
        for def in TABLES {
            let df = tables.get(def.name).ok_or_else(|| {
                Error::Internal(format!("inventory built without table `{}`", def.name))
            })?;
            validate::check(def, df, &validate::Origin::Memory)?;
        }
        Inventory::assemble(manifest, tables, BTreeSet::new())
    }

    fn assemble(
        manifest: Manifest,
        mut tables: BTreeMap<&'static str, DataFrame>,
        not_collected: BTreeSet<String>,
    ) -> Result<Inventory> {
        check_collected_at(&manifest)?;
        let now = manifest.collected_at.timestamp_millis();
        for (name, df) in tables.iter_mut() {
            derive::columns(name, df, now)?;
        }
        let coverage = Coverage::read(
            &manifest,
            table_of(&tables, "accounts")?,
            table_of(&tables, "regions")?,
            table_of(&tables, "scan_errors")?,
            not_collected,
        )?;
        coverage.check_rows(&tables)?;
        let lineage = derive::Lineage {
            instance_ids_collected: collected(&manifest, "images", "source_instance_id"),
        };
        let ancestry = table_of(&tables, "image_ancestry")?.clone();
        // The organization's accounts, where its members were listed.
        let members: Option<PlHashSet<String>> = if coverage.members_listed {
            let accounts = table_of(&tables, "accounts")?;
            Some(
                str_column(accounts, "account_id")?
                    .into_iter()
                    .flatten()
                    .map(str::to_string)
                    .collect(),
            )
        } else {
            None
        };
        if let Some(images) = tables.get_mut("images") {
            // Both read only stored columns: computed side by side.
            let (versions, bases) = rayon::join(
                || derive::family_versions(images, &ancestry, &lineage, now),
                || derive::provenance(images, &ancestry, members.as_ref()),
            );
            for column in versions?.into_iter().chain(bases?) {
                images
                    .with_column(column)
                    .map_err(|e| derive::stage("images", &e))?;
            }
        }
        derive::launch_images(
            &mut tables,
            collected(&manifest, "launch_templates", "image_parameter"),
        )?;
        derive::inspector_scanned(&mut tables)?;
        let usage = derive::usage(&tables, &coverage, now)?;
        let mut derived = BTreeMap::from([
            ("launches", usage.launches),
            ("consumer_gaps", usage.consumer_gaps),
            ("image_consumer_gaps", usage.image_consumer_gaps),
            ("image_uses", usage.image_uses),
            ("image_use_gaps", usage.image_use_gaps),
        ]);
        derive::image_keys(
            tables
                .iter_mut()
                .chain(derived.iter_mut())
                .map(|(name, df)| (*name, df)),
        )?;
        Ok(Inventory {
            manifest,
            tables,
            derived,
            coverage,
        })
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    pub fn coverage(&self) -> &Coverage {
        &self.coverage
    }

    /// A table with its derived columns. Every schema table is present.
    pub fn table(&self, name: &str) -> Result<&DataFrame> {
        self.tables
            .get(name)
            .or_else(|| self.derived.get(name))
            .ok_or_else(|| Error::Internal(format!("no inventory table `{name}`")))
    }

    pub fn collected_at_ms(&self) -> i64 {
        self.manifest.collected_at.timestamp_millis()
    }

    /// Every table as a LazyFrame, plus the one-row `audit` table.
    pub fn frames(&self) -> Result<BTreeMap<String, LazyFrame>> {
        let mut out: BTreeMap<String, LazyFrame> = self
            .tables
            .iter()
            .chain(&self.derived)
            .map(|(name, df)| (name.to_string(), df.clone().lazy()))
            .collect();
        let audit = df!(
            "collected_at" => [self.collected_at_ms()],
            "organization_id" => [self.manifest.scope.organization_id.clone()],
        )
        .map_err(|e| Error::Internal(polars_message(&e)))?
        .lazy()
        .with_column(col("collected_at").cast(timestamp_dtype()));
        out.insert("audit".to_string(), audit);
        Ok(out)
    }
}

fn table_of<'a>(
    tables: &'a BTreeMap<&'static str, DataFrame>,
    name: &str,
) -> Result<&'a DataFrame> {
    tables
        .get(name)
        .ok_or_else(|| Error::Internal(format!("no inventory table `{name}`")))
}

/// Whether the scanner that wrote this inventory collected `table.column`
/// (the schema version it wrote is the column's or later).
fn collected(manifest: &Manifest, table: &str, column: &str) -> bool {
    schema::table(table)
        .and_then(|t| t.column(column))
        .is_some_and(|c| c.since <= manifest.schema_version)
}

fn check_collected_at(manifest: &Manifest) -> Result<()> {
    if TIMESTAMP_RANGE_MS.contains(&manifest.collected_at.timestamp_millis()) {
        Ok(())
    } else {
        Err(Error::input(format!(
            "{MANIFEST_FILE}: collected_at {} is outside 1970-01-01..2200-01-01",
            manifest.collected_at
        )))
    }
}

/// The trailing date and version tokens removed from an image name to get
/// its family: `-20260301-v3`, `-2025-03-01-v1`, `_v12`, `.3`.
pub const FAMILY_SUFFIX: &str = r"([-_.]v?\d+)+$";

/// An empty inventory of the right schema (for dry-running rules).
pub fn empty(collected_at: DateTime<Utc>) -> Result<Inventory> {
    let tables = TABLES
        .iter()
        .map(|t| Ok((t.name, TableBuilder::new(t).finish()?)))
        .collect::<Result<BTreeMap<_, _>>>()?;
    Inventory::new(Manifest::new(collected_at, Scope::default()), tables)
}

pub use crate::output::sha256_file;

pub use crate::paths::is_plain_file_name;

/// An inventory directory, as an output amiaudit may write over.
pub const OUTPUT: crate::output::Kind = crate::output::Kind {
    noun: "inventory",
    listed: listed_files,
    consistent: crate::output::always_consistent,
};

/// The files an inventory's manifest lists, the manifest included.
fn listed_files(dir: &Path) -> Result<crate::output::Listed> {
    let manifest = read_manifest(dir)?;
    Ok(manifest
        .tables
        .into_values()
        .map(|t| (t.file, Some(t.sha256)))
        .chain([(MANIFEST_FILE.to_string(), None)])
        .collect())
}

/// Reads a manifest.json with every field checked; errors name the file.
pub fn read_manifest(dir: &Path) -> Result<Manifest> {
    let manifest_path = dir.join(MANIFEST_FILE);
    let text = Error::read_text(
        &manifest_path,
        "not found; an inventory directory needs a manifest.json (write one with `amiaudit scan` or `amiaudit synth`)",
    )?;
    parse_manifest(&text, &manifest_path)
}

/// A manifest.json's text, checked; errors name it `manifest_path`.
pub fn parse_manifest(text: &str, manifest_path: &Path) -> Result<Manifest> {
    let manifest: Manifest = serde_json::from_str(text).map_err(|e| {
        Error::input(format!(
            "{}:{}:{}: invalid manifest: {}",
            manifest_path.display(),
            e.line(),
            e.column(),
            crate::error::strip_serde_position(&e.to_string())
        ))
    })?;
    if manifest.schema_version > SCHEMA_VERSION
        || manifest.schema_version < schema::OLDEST_SCHEMA_VERSION
    {
        return Err(Error::input(format!(
            "{}: schema version {} is not supported; this amiaudit reads versions {} to {SCHEMA_VERSION} (use the amiaudit release that wrote it, or re-scan)",
            manifest_path.display(),
            manifest.schema_version,
            schema::OLDEST_SCHEMA_VERSION
        )));
    }
    for (name, entry) in &manifest.tables {
        if schema::table(name).is_none() {
            return Err(Error::input(format!(
                "{}: unknown table `{name}` (known tables: {})",
                manifest_path.display(),
                TABLES.iter().map(|t| t.name).collect::<Vec<_>>().join(", ")
            )));
        }
        if !is_plain_file_name(&entry.file) {
            return Err(Error::input(format!(
                "{}: table `{name}` names file `{}`; table files must be plain names inside the inventory directory",
                manifest_path.display(),
                entry.file.escape_debug()
            )));
        }
        if entry.file == MANIFEST_FILE
            || manifest
                .tables
                .iter()
                .any(|(other, e)| other != name && e.file == entry.file)
        {
            return Err(Error::input(format!(
                "{}: table `{name}` names file `{}`, which is the manifest or another table's file; each table needs its own file",
                manifest_path.display(),
                entry.file.escape_debug()
            )));
        }
    }
    Ok(manifest)
}

/// Loads and checks an inventory directory.
pub fn load(dir: &Path) -> Result<Inventory> {
    load_as(dir, dir)
}

/// Loads and checks the inventory in `dir` (a copy), naming its files as
/// they are in `shown` (where the user put them) in every message.
pub fn load_as(dir: &Path, shown: &Path) -> Result<Inventory> {
    if !dir.is_dir() {
        return Err(Error::input(format!(
            "{}: inventory directory not found (give the folder that holds manifest.json)",
            shown.display()
        )));
    }
    let manifest_path = shown.join(MANIFEST_FILE);
    let text = Error::read_text(
        &dir.join(MANIFEST_FILE),
        "not found; an inventory directory needs a manifest.json (write one with `amiaudit scan` or `amiaudit synth`)",
    )?;
    let manifest = parse_manifest(&text, &manifest_path)?;
    let version = manifest.schema_version;
    // Tables are independent: hashed, read and checked side by side. The
    // first error in schema order is the one reported.
    let loaded: Vec<Result<Option<DataFrame>>> = TABLES
        .par_iter()
        .map(|def| load_table(dir, shown, &manifest_path, &manifest, def))
        .collect();
    let mut tables = BTreeMap::new();
    let mut not_collected = BTreeSet::new();
    for (def, df) in TABLES.iter().zip(loaded) {
        match df? {
            Some(df) => {
                tables.insert(def.name, df);
            }
            None => {
                // The inventory predates this table: empty, and not collected.
                tables.insert(def.name, TableBuilder::new(def).finish()?);
                not_collected.extend(def.operations.iter().map(|op| op.to_ascii_lowercase()));
            }
        }
    }
    if version < SCHEMA_VERSION {
        upgrade::upgrade(version, &mut tables)?;
    }
    Inventory::assemble(manifest, tables, not_collected)
}

/// One table of an inventory: `None` when the inventory predates it.
fn load_table(
    dir: &Path,
    shown_dir: &Path,
    manifest_path: &Path,
    manifest: &Manifest,
    def: &'static TableDef,
) -> Result<Option<DataFrame>> {
    let version = manifest.schema_version;
    let Some(entry) = manifest.tables.get(def.name) else {
        if def.since > version {
            return Ok(None);
        }
        return Err(Error::input(format!(
            "{}: table `{}` is missing from the manifest",
            manifest_path.display(),
            def.name
        )));
    };
    let path = dir.join(&entry.file);
    let shown = shown_dir.join(&entry.file);
    if !path.is_file() {
        return Err(Error::input(format!(
            "{}: table file not found (listed for `{}` in manifest.json)",
            shown.display(),
            def.name
        )));
    }
    let digest = sha256_file(&path)?;
    if digest != entry.sha256 {
        return Err(Error::input(format!(
            "{}: sha256 does not match manifest.json; the file changed after it was written (restore it, or re-run the scan)",
            shown.display()
        )));
    }
    let df = read::table(&read::TableFile {
        def,
        path: &path,
        shown: &shown,
        version,
        rows: entry.rows,
    })?;
    if df.height() as u64 != entry.rows {
        return Err(Error::input(format!(
            "{}: holds {} rows but manifest.json says {}",
            shown.display(),
            df.height(),
            entry.rows
        )));
    }
    Ok(Some(df))
}

/// RFC 3339 with a `Z`, seconds precision unless milliseconds are present.
/// Every timestamp an inventory holds is in range; one that is not is an
/// internal error, never a silent 1970.
pub fn format_timestamp(ms: i64) -> Result<String> {
    let t = Utc
        .timestamp_millis_opt(ms)
        .single()
        .ok_or_else(|| Error::Internal(format!("timestamp {ms} ms is out of range")))?;
    Ok(if ms % 1000 == 0 {
        t.to_rfc3339_opts(SecondsFormat::Secs, true)
    } else {
        t.to_rfc3339_opts(SecondsFormat::Millis, true)
    })
}
