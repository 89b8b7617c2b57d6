//! Rule parameters: typed values with defaults, overridden by
//! `amiaudit.toml` `[params.RULE]` and `--param RULE.KEY=VALUE`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::PolicyPack;
use crate::error::{Error, Result};

/// Parameter values in force: the rule defaults, overridden by config and flags.
pub type ParamOverrides = BTreeMap<String, BTreeMap<String, ParamValue>>;

/// A parameter value. Its type is fixed by the rule's default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ParamValue {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<String>),
}

impl ParamValue {
    pub fn type_name(&self) -> &'static str {
        match self {
            ParamValue::Bool(_) => "boolean",
            ParamValue::Int(_) => "integer",
            ParamValue::Float(_) => "number",
            ParamValue::Str(_) => "string",
            ParamValue::List(_) => "list of strings",
        }
    }

    /// The value as an SQL literal: strings quoted with quotes doubled, lists
    /// as a parenthesised list usable after `IN`. An empty list becomes a
    /// list holding one value no AWS identifier, region or tag key can
    /// take, so `IN` is false and `NOT IN` true (a list holding NULL would
    /// make both unknown).
    pub fn sql_literal(&self) -> String {
        match self {
            ParamValue::Bool(b) => if *b { "TRUE" } else { "FALSE" }.to_string(),
            ParamValue::Int(i) => i.to_string(),
            ParamValue::Float(f) => format!("{f:?}"),
            ParamValue::Str(s) => quote(s),
            ParamValue::List(items) if items.is_empty() => "('<empty list>')".to_string(),
            ParamValue::List(items) => format!(
                "({})",
                items
                    .iter()
                    .map(|s| quote(s))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    /// The value as plain text, for reasons and explanations.
    pub fn display(&self) -> String {
        match self {
            ParamValue::Bool(b) => b.to_string(),
            ParamValue::Int(i) => i.to_string(),
            ParamValue::Float(f) => f.to_string(),
            ParamValue::Str(s) => s.clone(),
            ParamValue::List(items) => items.join(", "),
        }
    }

    /// Parses an override given as text (`--param RULE.KEY=VALUE`) into this value's type.
    pub fn parse_like(&self, text: &str) -> Result<ParamValue, String> {
        let bad = || format!("expects {}, got `{text}`", self.type_name());
        Ok(match self {
            ParamValue::Bool(_) => ParamValue::Bool(text.parse().map_err(|_| bad())?),
            ParamValue::Int(_) => ParamValue::Int(text.parse().map_err(|_| bad())?),
            ParamValue::Float(_) => ParamValue::Float(text.parse().map_err(|_| bad())?),
            ParamValue::Str(_) => ParamValue::Str(text.to_string()),
            ParamValue::List(_) => ParamValue::List(
                text.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect(),
            ),
        })
    }

    /// Whether `other` may replace this value (same type; an integer may stand for a number).
    pub fn accepts(&self, other: &ParamValue) -> bool {
        matches!(
            (self, other),
            (ParamValue::Bool(_), ParamValue::Bool(_))
                | (ParamValue::Int(_), ParamValue::Int(_))
                | (
                    ParamValue::Float(_),
                    ParamValue::Float(_) | ParamValue::Int(_)
                )
                | (ParamValue::Str(_), ParamValue::Str(_))
                | (ParamValue::List(_), ParamValue::List(_))
        )
    }
}

pub(super) fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamSpec {
    pub default: ParamValue,
    #[serde(default)]
    pub description: String,
}

/// Applies `RULE.KEY=VALUE` overrides (from flags) on top of `base`, checking
/// that the rule and the parameter exist and the value has the right type.
pub fn parse_param_flags(
    pack: &PolicyPack,
    flags: &[String],
    mut base: ParamOverrides,
) -> Result<ParamOverrides> {
    for flag in flags {
        let (key, value) = flag
            .split_once('=')
            .ok_or_else(|| Error::input(format!("--param `{flag}`: expected RULE.KEY=VALUE")))?;
        let (rule_id, name) = key
            .split_once('.')
            .ok_or_else(|| Error::input(format!("--param `{flag}`: expected RULE.KEY=VALUE")))?;
        let spec = param_spec(pack, rule_id, name)
            .map_err(|m| Error::input(format!("--param `{flag}`: {m}")))?;
        let parsed = spec
            .default
            .parse_like(value)
            .map_err(|m| Error::input(format!("--param `{flag}`: {m}")))?;
        base.entry(rule_id.to_string())
            .or_default()
            .insert(name.to_string(), parsed);
    }
    Ok(base)
}

/// Finds a rule's parameter, or says what is wrong in a sentence.
pub fn param_spec<'a>(
    pack: &'a PolicyPack,
    rule_id: &str,
    name: &str,
) -> Result<&'a ParamSpec, String> {
    let rule = pack
        .rules
        .iter()
        .find(|r| r.id == rule_id)
        .ok_or_else(|| format!("no rule `{rule_id}`"))?;
    rule.params.get(name).ok_or_else(|| {
        let known: Vec<&str> = rule.params.keys().map(String::as_str).collect();
        if known.is_empty() {
            format!("rule `{rule_id}` has no parameters")
        } else {
            format!(
                "rule `{rule_id}` has no parameter `{name}` (it has: {})",
                known.join(", ")
            )
        }
    })
}
