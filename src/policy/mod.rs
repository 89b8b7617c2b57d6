//! Policy rules: YAML metadata plus SQL over the inventory tables.
//!
//! Owns the rule file format, loading a policy directory with every error
//! pinned to a file (and a line where the YAML parser knows it), parameters
//! with their defaults and overrides, and compiling a rule to the SQL the
//! evaluator runs. Nothing here touches an inventory.
//!
//! A rule is either a full `query` returning `account_id, region,
//! resource_id, resource_name, status, reason`, or the short form: a `from`
//! table, an optional `where` scope, a `fail_when` predicate and a `reason`
//! template. Parameters appear in SQL and reasons as `{{ name }}` and are
//! rendered as SQL literals, never spliced in as text.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::inventory::schema;

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

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamSpec {
    pub default: ParamValue,
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Remediation {
    pub text: String,
    /// AWS CLI command with `{account_id}`, `{region}`, `{resource_id}` placeholders.
    #[serde(default)]
    pub command: Option<String>,
}

/// One rule as written in a policy file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub id: String,
    pub title: String,
    pub severity: Severity,
    pub resource_type: String,
    pub description: String,
    pub remediation: Remediation,
    #[serde(default)]
    pub references: Vec<String>,
    /// Framework name -> requirement ids.
    #[serde(default)]
    pub frameworks: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub params: BTreeMap<String, ParamSpec>,
    /// Inventory data the rule depends on, as `service:Operation`. Where a
    /// scan error says one of these failed, results there are `unknown`.
    #[serde(default)]
    pub requires: Vec<String>,
    #[serde(default)]
    pub query: Option<String>,
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default, rename = "where")]
    pub scope: Option<String>,
    #[serde(default)]
    pub fail_when: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
    /// File the rule was read from (relative to the policy directory's parent).
    #[serde(skip)]
    pub source: String,
}

/// Parameter values in force: the rule defaults, overridden by config and flags.
pub type ParamOverrides = BTreeMap<String, BTreeMap<String, ParamValue>>;

impl Rule {
    fn err(&self, message: impl Into<String>) -> Error {
        Error::Rule {
            file: self.source.clone(),
            rule: self.id.clone(),
            message: message.into(),
        }
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
    pub fn sql(&self, overrides: &ParamOverrides) -> Result<String> {
        let params = self.effective_params(overrides);
        if let Some(query) = &self.query {
            return self.substitute(query, &params, Literal::Sql);
        }
        let (Some(from), Some(fail_when)) = (&self.from, &self.fail_when) else {
            return Err(self.err("needs either `query` or both `from` and `fail_when`"));
        };
        let table = schema::table(from).ok_or_else(|| {
            self.err(format!(
                "`from` names unknown table `{from}` (known: {})",
                schema::TABLES
                    .iter()
                    .map(|t| t.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
        let predicate = self.substitute(fail_when, &params, Literal::Sql)?;
        let reason_template = self.reason.as_deref().unwrap_or(&self.title);
        let reason = self.reason_expr(reason_template, &params)?;
        // Three-valued on purpose: a predicate that is NULL (data not known)
        // gives `unknown`, never `pass`.
        let id = table.resource_id;
        let name = table.resource_name;
        if !predicate.to_ascii_lowercase().contains("select") {
            let scope = match &self.scope {
                Some(w) => format!(" WHERE {}", self.substitute(w, &params, Literal::Sql)?),
                None => String::new(),
            };
            return Ok(format!(
                "SELECT account_id, region, CAST({id} AS VARCHAR) AS resource_id, CAST({name} AS VARCHAR) AS resource_name,\n\
                 CASE WHEN ({predicate}) THEN 'fail' WHEN NOT ({predicate}) THEN 'pass' ELSE 'unknown' END AS status,\n\
                 CASE WHEN ({predicate}) THEN CAST({reason} AS VARCHAR) WHEN NOT ({predicate}) THEN '' ELSE 'needed data is missing' END AS reason\n\
                 FROM {from}{scope}"
            ));
        }
        // polars evaluates `IN (subquery)` only in WHERE clauses: one SELECT per outcome.
        let scope = match &self.scope {
            Some(w) => format!("({}) AND ", self.substitute(w, &params, Literal::Sql)?),
            None => String::new(),
        };
        let select = |status: &str, reason: &str| {
            format!(
                "SELECT account_id, region, CAST({id} AS VARCHAR) AS resource_id, \
                 CAST({name} AS VARCHAR) AS resource_name, '{status}' AS status, \
                 CAST({reason} AS VARCHAR) AS reason FROM {from}"
            )
        };
        Ok(format!(
            "{} WHERE {scope}({predicate})\nUNION ALL\n{} WHERE {scope}NOT ({predicate})\nUNION ALL\n{} WHERE {scope}(({predicate}) IS NULL)",
            select("fail", &reason),
            select("pass", "''"),
            select("unknown", "'needed data is missing'"),
        ))
    }

    /// Replaces each `{{ name }}` by the parameter's SQL literal.
    fn substitute(
        &self,
        text: &str,
        params: &BTreeMap<String, ParamValue>,
        how: Literal,
    ) -> Result<String> {
        let mut out = String::with_capacity(text.len());
        for piece in self.pieces(text, false)? {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Param(expr) => out.push_str(&self.render_param(expr, params, how)?),
                Piece::Column(_) => unreachable!("columns are only parsed in reasons"),
            }
        }
        Ok(out)
    }

    /// Renders `name` or `name | filter`. Filters: `length` (items of a
    /// list, characters of a string) and `text` (the value as plain text,
    /// quote-escaped to sit inside an SQL string literal).
    fn render_param(
        &self,
        expr: &str,
        params: &BTreeMap<String, ParamValue>,
        how: Literal,
    ) -> Result<String> {
        let (name, filter) = match expr.split_once('|') {
            Some((n, f)) => (n.trim(), Some(f.trim())),
            None => (expr.trim(), None),
        };
        let value = params.get(name).ok_or_else(|| {
            self.err(format!(
                "uses parameter `{name}` that is not declared under `params`"
            ))
        })?;
        Ok(match (filter, how) {
            (Some("length"), _) => match value {
                ParamValue::List(items) => items.len().to_string(),
                ParamValue::Str(s) => s.chars().count().to_string(),
                other => {
                    return Err(self.err(format!(
                        "`{name} | length` needs a list or string, `{name}` is {}",
                        other.type_name()
                    )));
                }
            },
            (Some("text"), Literal::Sql) => value.display().replace('\'', "''"),
            (Some("text"), Literal::Text) | (None, Literal::Text) => value.display(),
            (Some(other), _) => {
                return Err(self.err(format!("unknown filter `{other}` (use `length` or `text`)")));
            }
            (None, Literal::Sql) => value.sql_literal(),
        })
    }

    /// Splits a template into text, `{{ param }}` and (in reasons) `{column}` pieces.
    fn pieces<'t>(&self, text: &'t str, columns: bool) -> Result<Vec<Piece<'t>>> {
        let mut pieces = Vec::new();
        let mut rest = text;
        loop {
            let next = if columns {
                rest.find('{')
            } else {
                rest.find("{{")
            };
            let Some(start) = next else { break };
            if start > 0 {
                pieces.push(Piece::Text(&rest[..start]));
            }
            if rest[start..].starts_with("{{") {
                let after = &rest[start + 2..];
                let end = after
                    .find("}}")
                    .ok_or_else(|| self.err("`{{` without a closing `}}`"))?;
                pieces.push(Piece::Param(&after[..end]));
                rest = &after[end + 2..];
            } else {
                let after = &rest[start + 1..];
                let end = after
                    .find('}')
                    .ok_or_else(|| self.err("`reason` has `{` without a closing `}`"))?;
                let column = after[..end].trim();
                if column.is_empty()
                    || !column
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_')
                {
                    return Err(self.err(format!(
                        "`reason` placeholder `{{{column}}}` is not a column name"
                    )));
                }
                pieces.push(Piece::Column(column));
                rest = &after[end + 1..];
            }
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest));
        }
        Ok(pieces)
    }

    /// Compiles a reason template (`{column}` for columns, `{{ param }}` for
    /// parameters) into an SQL string expression.
    fn reason_expr(&self, template: &str, params: &BTreeMap<String, ParamValue>) -> Result<String> {
        let mut parts: Vec<String> = Vec::new();
        let mut literal = String::new();
        for piece in self.pieces(template, true)? {
            match piece {
                Piece::Text(t) => literal.push_str(t),
                Piece::Param(expr) => {
                    literal.push_str(&self.render_param(expr, params, Literal::Text)?)
                }
                Piece::Column(column) => {
                    if !literal.is_empty() {
                        parts.push(quote(&std::mem::take(&mut literal)));
                    }
                    parts.push(format!("COALESCE(CAST({column} AS VARCHAR), '?')"));
                }
            }
        }
        if !literal.is_empty() {
            parts.push(quote(&literal));
        }
        Ok(match parts.len() {
            0 => "''".to_string(),
            1 => parts.remove(0),
            _ => format!("concat({})", parts.join(", ")),
        })
    }

    /// The remediation command with a finding's identifiers filled in.
    pub fn remediation_command(
        &self,
        account_id: &str,
        region: &str,
        resource_id: &str,
    ) -> Option<String> {
        self.remediation.command.as_ref().map(|c| {
            c.replace("{account_id}", account_id)
                .replace("{region}", region)
                .replace("{resource_id}", resource_id)
        })
    }
}

enum Piece<'t> {
    Text(&'t str),
    Param(&'t str),
    Column(&'t str),
}

#[derive(Clone, Copy)]
enum Literal {
    Sql,
    Text,
}

/// A set of rules loaded from one or more directories, sorted by severity then id.
#[derive(Debug, Clone, Default)]
pub struct PolicyPack {
    pub rules: Vec<Rule>,
    /// sha256 over every rule file's path and bytes, in path order.
    pub sha256: String,
}

include!(concat!(env!("OUT_DIR"), "/builtin_policies.rs"));

/// The rule pack compiled into this binary (the repository's `policies/`).
pub fn load_builtin() -> Result<PolicyPack> {
    let files = BUILTIN_POLICIES
        .iter()
        .map(|(path, text)| (PathBuf::from(path), text.to_string()))
        .collect();
    load_files(files, "the built-in pack")
}

/// Loads every `*.yaml` / `*.yml` below the given directories.
pub fn load_dirs(dirs: &[PathBuf]) -> Result<PolicyPack> {
    let mut paths = Vec::new();
    for dir in dirs {
        if !dir.is_dir() {
            return Err(Error::input(format!(
                "{}: policy directory not found",
                dir.display()
            )));
        }
        collect_yaml(dir, &mut paths)?;
    }
    let mut files = Vec::new();
    for path in paths {
        let text = fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        files.push((path, text));
    }
    let label = dirs
        .iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    load_files(files, &label)
}

fn load_files(mut files: Vec<(PathBuf, String)>, label: &str) -> Result<PolicyPack> {
    use sha2::{Digest, Sha256};
    files.sort();
    let mut hasher = Sha256::new();
    let mut rules: Vec<Rule> = Vec::new();
    for (path, text) in &files {
        hasher.update(path.to_string_lossy().as_bytes());
        hasher.update([0]);
        hasher.update(text.as_bytes());
        let rule = parse_rule(path, text)?;
        if let Some(other) = rules.iter().find(|r| r.id == rule.id) {
            return Err(Error::input(format!(
                "{}: duplicate rule id `{}` (also defined in {})",
                path.display(),
                rule.id,
                other.source
            )));
        }
        rules.push(rule);
    }
    if rules.is_empty() {
        return Err(Error::input(format!(
            "no rules found: no *.yaml files in {label}"
        )));
    }
    rules.sort_by(|a, b| (a.severity, &a.id).cmp(&(b.severity, &b.id)));
    Ok(PolicyPack {
        rules,
        sha256: hex::encode(hasher.finalize()),
    })
}

/// Keeps the rules mapped to `framework`; an unknown name is an input error.
pub fn filter_framework(pack: &mut PolicyPack, framework: &str) -> Result<()> {
    let known = pack.frameworks();
    if !known.iter().any(|f| f == framework) {
        return Err(Error::input(format!(
            "--framework `{framework}`: no rule maps to it (known: {})",
            known.join(", ")
        )));
    }
    pack.rules.retain(|r| r.frameworks.contains_key(framework));
    Ok(())
}

impl PolicyPack {
    /// Every framework name any rule maps to, sorted.
    pub fn frameworks(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .rules
            .iter()
            .flat_map(|r| r.frameworks.keys().cloned())
            .collect();
        names.sort();
        names.dedup();
        names
    }
}

fn collect_yaml(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let entries = fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    for entry in entries {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        if path.is_dir() {
            collect_yaml(&path, out)?;
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        ) {
            out.push(path);
        }
    }
    Ok(())
}

/// Parses one rule file and checks what can be checked without an inventory.
pub fn parse_rule(path: &Path, text: &str) -> Result<Rule> {
    let mut rule: Rule = serde_saphyr::from_str(text).map_err(|e| yaml_error(path, &e))?;
    rule.source = path.display().to_string();
    validate(&rule)?;
    Ok(rule)
}

/// `file:line:column: message` from a YAML error, on one line.
pub fn yaml_error(path: &Path, err: &serde_saphyr::Error) -> Error {
    let inner = err.without_snippet();
    let message = inner.to_string();
    // The parser's own text may carry its position; keep the first line only.
    let message = message.lines().next().unwrap_or("").trim().to_string();
    let message = match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message,
    };
    match err.location() {
        Some(loc) => Error::input(format!(
            "{}:{}:{}: {message}",
            path.display(),
            loc.line(),
            loc.column()
        )),
        None => Error::input(format!("{}: {message}", path.display())),
    }
}

fn validate(rule: &Rule) -> Result<()> {
    let valid_id = !rule.id.is_empty()
        && rule
            .id
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-');
    if !valid_id {
        return Err(rule.err("id must be upper-case letters, digits and `-`, e.g. `AMI-PUBLIC`"));
    }
    match (&rule.query, &rule.from, &rule.fail_when) {
        (Some(_), None, None) if rule.reason.is_none() && rule.scope.is_none() => {}
        (None, Some(_), Some(_)) => {}
        (Some(_), _, _) => {
            return Err(rule
                .err("`query` cannot be combined with `from`, `where`, `fail_when` or `reason`"));
        }
        _ => return Err(rule.err("needs either `query` or both `from` and `fail_when`")),
    }
    for (name, spec) in &rule.params {
        if let ParamValue::Float(f) = spec.default
            && !f.is_finite()
        {
            return Err(rule.err(format!(
                "parameter `{name}` default must be a finite number"
            )));
        }
    }
    for req in &rule.requires {
        if !req.contains(':') {
            return Err(rule.err(format!(
                "`requires` entry `{req}` must be `service:Operation`, e.g. `ec2:DescribeImages`"
            )));
        }
    }
    // Compiling with defaults catches unknown parameters and bad templates early.
    rule.sql(&ParamOverrides::new())?;
    Ok(())
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
