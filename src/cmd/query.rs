//! `amiaudit query`: ad-hoc SQL over an inventory's tables.

use std::path::Path;

use crate::error::{Error, Result};
use crate::inventory;

/// Output format of `amiaudit query`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryFormat {
    Table,
    Csv,
    Json,
}

impl QueryFormat {
    pub const NAMES: [&'static str; 3] = ["table", "csv", "json"];

    pub fn parse(text: &str) -> Option<QueryFormat> {
        match text {
            "table" => Some(QueryFormat::Table),
            "csv" => Some(QueryFormat::Csv),
            "json" => Some(QueryFormat::Json),
            _ => None,
        }
    }
}

/// `amiaudit query`: ad-hoc SQL over an inventory (with its derived columns).
pub fn run(inventory_dir: &Path, sql: &str, format: QueryFormat) -> Result<String> {
    crate::policy::check_sql_bounds(sql).map_err(|why| {
        Error::input(format!(
            "query: {}",
            why.replacen("its SQL", "the query", 1)
        ))
    })?;
    let inv = inventory::load(inventory_dir)?;
    // polars panics on values it cannot show (a timestamp past year 262143);
    // a query is user input, so that is one line of error, not a crash.
    // It is planned on a rule thread, with the stack a rule gets.
    crate::evaluate::on_rule_thread(|| {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run_query(&inv, sql, format)
        }))
    })
    .unwrap_or_else(|panic| {
        Err(Error::input(format!(
            "query: the result cannot be shown: {}",
            crate::error::panic_message(panic.as_ref())
        )))
    })
}

fn run_query(inv: &inventory::Inventory, sql: &str, format: QueryFormat) -> Result<String> {
    use polars::prelude::*;
    let mut ctx = polars::sql::SQLContext::new();
    for (name, lf) in inv.frames()? {
        ctx.register(&name, lf);
    }
    let df = ctx.execute(sql).and_then(|lf| lf.collect()).map_err(|e| {
        Error::input(format!(
            "query: SQL error: {}",
            crate::error::polars_message(&e)
        ))
    })?;
    Ok(match format {
        // Cells hold AWS text: made inert for the terminal (line breaks
        // too, so a cell cannot start a line of its own).
        QueryFormat::Table => {
            crate::text::terminal_text(&format!("{}\n{} rows\n", df_inert(&df)?, df.height()))
        }
        QueryFormat::Csv | QueryFormat::Json => {
            let names: Vec<String> = df
                .get_column_names()
                .iter()
                .map(|n| n.to_string())
                .collect();
            let cell = |c: &Column, i: usize| -> Result<serde_json::Value> {
                let value = c.get(i).map_err(|e| {
                    Error::input(format!("query: {}", crate::error::polars_message(&e)))
                })?;
                Ok(match value {
                    AnyValue::Null => serde_json::Value::Null,
                    AnyValue::Boolean(b) => b.into(),
                    AnyValue::Int64(v) => v.into(),
                    AnyValue::Int32(v) => v.into(),
                    AnyValue::UInt32(v) => v.into(),
                    AnyValue::UInt64(v) => v.into(),
                    AnyValue::Float64(v) => v.into(),
                    AnyValue::String(s) => s.into(),
                    AnyValue::Datetime(v, unit, _) => {
                        let ms = match unit {
                            TimeUnit::Milliseconds => v,
                            TimeUnit::Microseconds => v.div_euclid(1_000),
                            TimeUnit::Nanoseconds => v.div_euclid(1_000_000),
                        };
                        inventory::format_timestamp(ms)
                            .map_err(|_| {
                                Error::input(format!(
                                    "query: column `{}` holds a timestamp outside 1970-2200",
                                    c.name()
                                ))
                            })?
                            .into()
                    }
                    other => other.to_string().trim_matches('"').into(),
                })
            };
            let columns = df.columns();
            if format == QueryFormat::Json {
                let rows = (0..df.height())
                    .map(|i| {
                        names
                            .iter()
                            .zip(columns)
                            .map(|(n, c)| Ok((n.clone(), cell(c, i)?)))
                            .collect::<Result<serde_json::Map<_, _>>>()
                            .map(serde_json::Value::Object)
                    })
                    .collect::<Result<Vec<_>>>()?;
                let mut text = serde_json::to_string_pretty(&rows)
                    .map_err(|e| Error::Internal(e.to_string()))?;
                text.push('\n');
                crate::text::json_for_terminal(&text)
            } else {
                let mut w = ::csv::Writer::from_writer(Vec::new());
                let fail = |e: ::csv::Error| Error::Internal(e.to_string());
                w.write_record(&names).map_err(fail)?;
                for i in 0..df.height() {
                    let record = columns
                        .iter()
                        .map(|c| {
                            Ok(match cell(c, i)? {
                                serde_json::Value::Null => String::new(),
                                serde_json::Value::String(s) => {
                                    crate::text::terminal_field(&crate::text::neutralise_cell(&s))
                                }
                                v => v.to_string(),
                            })
                        })
                        .collect::<Result<Vec<String>>>()?;
                    w.write_record(&record).map_err(fail)?;
                }
                String::from_utf8(w.into_inner().map_err(|e| Error::Internal(e.to_string()))?)
                    .map_err(|e| Error::Internal(e.to_string()))?
            }
        }
    })
}

/// The frame with every text cell made one inert line, for the table view.
fn df_inert(df: &polars::prelude::DataFrame) -> Result<polars::prelude::DataFrame> {
    let mut out = df.clone();
    for name in df.get_column_names_owned() {
        let column = df
            .column(&name)
            .map_err(|e| Error::Internal(crate::error::polars_message(&e)))?;
        if let Ok(text) = column.str() {
            let cleaned: Vec<Option<String>> = text
                .iter()
                .map(|v| v.map(crate::text::terminal_field))
                .collect();
            out.with_column(polars::prelude::Column::new(name.clone(), cleaned))
                .map_err(|e| Error::Internal(crate::error::polars_message(&e)))?;
        }
    }
    Ok(out)
}
