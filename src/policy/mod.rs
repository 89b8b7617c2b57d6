//! Policy rules: YAML metadata plus SQL over the inventory tables.
//!
//! - this file: the rule types ([`Rule`], [`Check`], [`Evidence`], [`Severity`]);
//! - `params`: parameter values, their defaults and overrides;
//! - `sql`: compiling a rule to the SQL the evaluator runs;
//! - `pack`: loading and checking a pack of rule files.
//!
//! Nothing here touches an inventory.
//!
//! A rule is either a full `query` returning `account_id, region,
//! resource_id, resource_name, status, reason`, or the short form: a `from`
//! table, an optional `where` scope, a `fail_when` predicate and a `reason`
//! template. Its `evidence` names the facts each result rests on: calls
//! (`ec2:DescribeImages`) that must have succeeded in the account-region,
//! and columns of the resource's own row (`images.public`) that must be
//! known; the evaluator makes a result `unknown` where one is missing.

mod pack;
mod params;
mod sql;
pub use sql::check_sql_bounds;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::inventory::schema::{self, TableDef};

pub use pack::{
    PolicyPack, filter_framework, load_builtin, load_dirs, pack_sha256, parse_rule, yaml_error,
};
pub use params::{ParamOverrides, ParamSpec, ParamValue, param_spec, parse_param_flags};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    // Declared most severe first, so sorting puts critical first.
    Critical,
    High,
    Medium,
    Low,
    Info,
}

impl Severity {
    pub const ALL: [Severity; 5] = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
        Severity::Info,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::High => "high",
            Severity::Medium => "medium",
            Severity::Low => "low",
            Severity::Info => "info",
        }
    }

    /// Weight of a failure of this severity in the hygiene score.
    pub fn weight(self) -> f64 {
        match self {
            Severity::Critical => 10.0,
            Severity::High => 5.0,
            Severity::Medium => 3.0,
            Severity::Low => 1.0,
            Severity::Info => 0.0,
        }
    }

    pub fn parse(s: &str) -> Option<Severity> {
        Severity::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Remediation {
    pub text: String,
    /// AWS CLI command with `{account_id}`, `{region}`, `{resource_id}` placeholders.
    #[serde(default)]
    pub command: Option<String>,
}

/// What a rule checks: a full query, or the short form.
#[derive(Debug, Clone)]
pub enum Check {
    /// SQL returning `account_id, region, resource_id, resource_name,
    /// status, reason` (and optionally `resource_type`).
    Query(String),
    /// One row per row of `from` (in `scope`): fail where `fail_when`.
    Predicate {
        from: &'static TableDef,
        scope: Option<String>,
        fail_when: String,
        reason: Option<String>,
    },
}

/// A fact a result rests on.
#[derive(Debug, Clone)]
pub enum Evidence {
    /// `service:Operation`: the call must have succeeded in the
    /// account-region (or for the resource, where the call is about one).
    Call(String),
    /// `table.column` of the resource's own row: must be known (not null).
    Column {
        table: &'static TableDef,
        column: String,
    },
}

impl Evidence {
    /// Parses `service:Operation` or `table.column`; the message says what is wrong.
    pub fn parse(text: &str) -> Result<Evidence, String> {
        if let Some((service, operation)) = text.split_once(':') {
            let ok = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric());
            if ok(service) && ok(operation) {
                return Ok(Evidence::Call(text.to_string()));
            }
        } else if let Some((table, column)) = text.split_once('.') {
            let def = schema::table(table)
                .ok_or_else(|| format!("evidence `{text}`: no table `{table}`"))?;
            let derived = schema::DERIVED
                .iter()
                .any(|d| d.table == table && d.name == column);
            if def.column(column).is_none() && !derived {
                return Err(format!(
                    "evidence `{text}`: table `{table}` has no column `{column}`"
                ));
            }
            return Ok(Evidence::Column {
                table: def,
                column: column.to_string(),
            });
        }
        Err(format!(
            "evidence `{text}` must be `service:Operation` (e.g. `ec2:DescribeImages`) or `table.column` (e.g. `images.public`)"
        ))
    }
}

impl fmt::Display for Evidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Evidence::Call(op) => f.write_str(op),
            Evidence::Column { table, column } => write!(f, "{}.{column}", table.name),
        }
    }
}

/// One rule, checked.
#[derive(Debug, Clone)]
pub struct Rule {
    pub id: String,
    pub title: String,
    pub severity: Severity,
    pub resource_type: String,
    pub description: String,
    pub remediation: Remediation,
    pub references: Vec<String>,
    /// Framework name -> requirement ids.
    pub frameworks: BTreeMap<String, Vec<String>>,
    pub params: BTreeMap<String, ParamSpec>,
    pub evidence: Vec<Evidence>,
    pub check: Check,
    /// File the rule was read from (relative to the policy directory's parent).
    pub source: String,
}

impl Rule {
    fn err(&self, message: impl Into<String>) -> Error {
        Error::Rule {
            file: self.source.clone(),
            rule: self.id.clone(),
            message: message.into(),
        }
    }

    /// The calls this rule needs (`service:Operation`).
    pub fn calls(&self) -> impl Iterator<Item = &str> {
        self.evidence.iter().filter_map(|e| match e {
            Evidence::Call(op) => Some(op.as_str()),
            Evidence::Column { .. } => None,
        })
    }

    /// Effective parameters: defaults with the overrides for this rule applied.
    pub fn effective_params(&self, overrides: &ParamOverrides) -> BTreeMap<String, ParamValue> {
        let mut out: BTreeMap<String, ParamValue> = self
            .params
            .iter()
            .map(|(k, spec)| (k.clone(), spec.default.clone()))
            .collect();
        if let Some(mine) = overrides.get(&self.id) {
            for (k, v) in mine {
                out.insert(k.clone(), v.clone());
            }
        }
        out
    }

    /// The SQL this rule runs, with parameters rendered as literals.
    pub fn sql(&self, overrides: &ParamOverrides) -> crate::error::Result<String> {
        sql::compile(self, &self.effective_params(overrides)).map_err(|m| self.err(m))
    }

    /// The remediation command with a finding's identifiers filled in,
    /// each shell-quoted where it holds more than an id's characters (an
    /// Auto Scaling group's name may hold `;` or `$(...)`).
    pub fn remediation_command(
        &self,
        account_id: &str,
        region: &str,
        resource_id: &str,
    ) -> Option<String> {
        self.remediation
            .command
            .as_ref()
            .map(|c| crate::text::fill_command(c, account_id, region, resource_id))
    }
}
