//! Writing an inventory: one file per table, sorted, and the manifest with
//! each file's sha256.

use std::fs;
use std::io::{BufWriter, Write};
use std::path::Path;

use polars::prelude::*;

use super::schema::{TABLES, TableDef};
use super::{
    Inventory, MANIFEST_FILE, Manifest, SCHEMA_VERSION, TableEntry, TableFormat, format_timestamp,
    sha256_file,
};
use crate::error::{Error, Result, polars_message};

/// Writes every table and the manifest into `dir` (created if needed).
/// The manifest's table entries are recomputed from what was written.
pub fn save(inventory: &Inventory, dir: &Path, format: TableFormat) -> Result<Manifest> {
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut manifest = inventory.manifest.clone();
    manifest.schema_version = SCHEMA_VERSION;
    manifest.tables.clear();
    for def in TABLES {
        let file = format!("{}.{}", def.name, format.extension());
        let path = dir.join(&file);
        let keys = storage_order(def);
        let mut df = inventory
            .table(def.name)?
            .select(def.columns.iter().map(|c| c.name))
            .and_then(|df| {
                df.sort(
                    keys,
                    SortMultipleOptions::default()
                        .with_nulls_last(true)
                        .with_maintain_order(true),
                )
            })
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
    let mut out = BufWriter::new(file);
    polars_io::parquet::write::ParquetWriter::new(&mut out)
        .finish(df)
        .map_err(|e| Error::Internal(format!("{}: {}", path.display(), polars_message(&e))))?;
    out.flush().map_err(|e| Error::io(path, e))
}

fn write_jsonl(def: &TableDef, df: &DataFrame, path: &Path) -> Result<()> {
    let file = fs::File::create(path).map_err(|e| Error::io(path, e))?;
    let mut out = BufWriter::new(file);
    let columns = def
        .columns
        .iter()
        .map(|c| {
            df.column(c.name)
                .map_err(|e| Error::Internal(polars_message(&e)))
        })
        .collect::<Result<Vec<&Column>>>()?;
    for row in 0..df.height() {
        let mut object = serde_json::Map::new();
        for (column_def, column) in def.columns.iter().zip(&columns) {
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
                    serde_json::Value::from(format_timestamp(ms)?)
                }
                other => {
                    return Err(Error::Internal(format!(
                        "table `{}` column `{}`: unexpected value {other:?}",
                        def.name, column_def.name
                    )));
                }
            };
            object.insert(column_def.name.to_string(), json);
        }
        serde_json::to_writer(&mut out, &object).map_err(|e| Error::Internal(e.to_string()))?;
        out.write_all(b"\n").map_err(|e| Error::io(path, e))?;
    }
    out.flush().map_err(|e| Error::io(path, e))
}

/// The columns a table is stored sorted by: account, region, resource, the
/// order results are reported in (most rule results then need no sort of
/// their own). Rows of one resource keep the order they were collected in.
pub(super) fn storage_order(def: &TableDef) -> Vec<&'static str> {
    let mut keys = vec!["account_id"];
    if def.column("region").is_some() {
        keys.push("region");
    }
    if !keys.contains(&def.resource_id) {
        keys.push(def.resource_id);
    }
    keys
}
