//! Loading a rule pack: rule files from directories (or the pack built into
//! the binary), each checked on its own, errors pinned to a file and, where
//! the YAML parser knows it, a line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{Check, Evidence, ParamSpec, ParamValue, Remediation, Rule, Severity};
use crate::error::{Error, Result};
use crate::inventory::schema;

/// One rule as written in a policy file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    id: String,
    title: String,
    severity: Severity,
    resource_type: String,
    description: String,
    remediation: Remediation,
    #[serde(default)]
    references: Vec<String>,
    #[serde(default)]
    frameworks: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    params: BTreeMap<String, ParamSpec>,
    /// `requires` is the name version 1 rule files used.
    #[serde(default, alias = "requires")]
    evidence: Vec<String>,
    #[serde(default)]
    query: Option<String>,
    #[serde(default)]
    from: Option<String>,
    #[serde(default, rename = "where")]
    scope: Option<String>,
    #[serde(default)]
    fail_when: Option<String>,
    #[serde(default)]
    reason: Option<String>,
}

/// A set of rules loaded from one or more directories, sorted by severity then id.
#[derive(Debug, Clone, Default)]
pub struct PolicyPack {
    pub rules: Vec<Rule>,
    /// sha256 over every rule file's path and bytes, in path order
    /// ([`pack_sha256`]).
    pub sha256: String,
    /// Every rule file as loaded: (path, text), in path order. An audit
    /// embeds them, so the hash can be checked later.
    pub files: Vec<(String, String)>,
}

/// The policy pack hash: each rule file's path and bytes, in path order.
pub fn pack_sha256<'a>(files: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> String {
    use sha2::{Digest, Sha256};
    let mut files: Vec<(&str, &[u8])> = files.into_iter().collect();
    files.sort();
    let mut hasher = Sha256::new();
    for (path, bytes) in files {
        hasher.update(path.as_bytes());
        hasher.update([0]);
        hasher.update(bytes);
    }
    hex::encode(hasher.finalize())
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

/// Loads every `*.yaml` / `*.yml` below the given directories (symlinks
/// followed, loops refused by walkdir).
pub fn load_dirs(dirs: &[PathBuf]) -> Result<PolicyPack> {
    let mut files = Vec::new();
    for dir in dirs {
        if !dir.is_dir() {
            return Err(Error::input(format!(
                "{}: policy directory not found",
                dir.display()
            )));
        }
        for entry in walkdir::WalkDir::new(dir)
            .follow_links(true)
            .sort_by_file_name()
        {
            let entry = entry.map_err(|e| {
                Error::input(format!(
                    "{}: cannot read policy directory: {e}",
                    e.path().unwrap_or(dir).display()
                ))
            })?;
            let path = entry.path();
            if entry.file_type().is_file()
                && matches!(
                    path.extension().and_then(|e| e.to_str()),
                    Some("yaml" | "yml")
                )
            {
                let text = Error::read_text(path, "not found")?;
                files.push((path.to_path_buf(), text));
            }
        }
    }
    let label = dirs
        .iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    load_files(files, &label)
}

fn load_files(mut files: Vec<(PathBuf, String)>, label: &str) -> Result<PolicyPack> {
    files.sort();
    let mut rules: Vec<Rule> = Vec::new();
    for (path, text) in &files {
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
    let files: Vec<(String, String)> = files
        .into_iter()
        .map(|(p, t)| (p.to_string_lossy().into_owned(), t))
        .collect();
    Ok(PolicyPack {
        rules,
        sha256: pack_sha256(files.iter().map(|(p, t)| (p.as_str(), t.as_bytes()))),
        files,
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

/// Parses one rule file and checks what can be checked without an inventory.
pub fn parse_rule(path: &Path, text: &str) -> Result<Rule> {
    let file: RuleFile = serde_saphyr::from_str(text).map_err(|e| yaml_error(path, &e))?;
    let source = path.display().to_string();
    let err = |message: String| Error::Rule {
        file: source.clone(),
        rule: file.id.clone(),
        message,
    };
    check_names(&file).map_err(&err)?;
    let check = match (file.query, file.from, file.fail_when) {
        (Some(query), None, None) if file.reason.is_none() && file.scope.is_none() => {
            Check::Query(query)
        }
        (None, Some(from), Some(fail_when)) => {
            let table = schema::table(&from).ok_or_else(|| {
                err(format!(
                    "`from` names unknown table `{from}` (known: {})",
                    schema::TABLES
                        .iter()
                        .map(|t| t.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?;
            Check::Predicate {
                from: table,
                scope: file.scope,
                fail_when,
                reason: file.reason,
            }
        }
        (Some(_), _, _) => {
            return Err(err(
                "`query` cannot be combined with `from`, `where`, `fail_when` or `reason`"
                    .to_string(),
            ));
        }
        _ => {
            return Err(err(
                "needs either `query` or both `from` and `fail_when`".to_string()
            ));
        }
    };
    for (name, spec) in &file.params {
        if let ParamValue::Float(f) = spec.default
            && !f.is_finite()
        {
            return Err(err(format!(
                "parameter `{name}` default must be a finite number"
            )));
        }
    }
    let evidence = parse_evidence(&file.evidence, &check, &file.resource_type).map_err(&err)?;
    let rule = Rule {
        id: file.id,
        title: file.title,
        severity: file.severity,
        resource_type: file.resource_type,
        description: file.description,
        remediation: file.remediation,
        references: file.references,
        frameworks: file.frameworks,
        params: file.params,
        evidence,
        check,
        source,
    };
    // Compiling with defaults catches unknown parameters and bad templates early.
    rule.sql(&super::ParamOverrides::new())?;
    Ok(rule)
}

/// The rule's names: its id, resource type, frameworks, and placeholders
/// in its remediation command.
fn check_names(file: &RuleFile) -> std::result::Result<(), String> {
    let valid_id = !file.id.is_empty()
        && file
            .id
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-');
    if !valid_id {
        return Err("id must be upper-case letters, digits and `-`, e.g. `AMI-PUBLIC`".to_string());
    }
    if let Some(placeholder) = file
        .remediation
        .command
        .as_deref()
        .and_then(crate::text::placeholder_in_quotes)
    {
        return Err(format!(
            "remediation command: `{placeholder}` stands inside quotes, where the quoted word it becomes would end them; put it outside, joined to the quoted text ('...'{placeholder}'...')"
        ));
    }
    let valid_type = !file.resource_type.is_empty()
        && file.resource_type.len() <= 64
        && file
            .resource_type
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !valid_type {
        return Err(
            "resource_type must be lower-case letters, digits and `-`, e.g. `ami`".to_string(),
        );
    }
    for framework in file.frameworks.keys() {
        if !is_safe_name(framework) {
            return Err(format!(
                "framework name `{}` must be lower-case letters, digits, `.` and `-` (it names a file, findings-<framework>.csv)",
                framework.escape_debug()
            ));
        }
    }
    Ok(())
}

/// The facts a rule rests on; a column fact must be on the table of the
/// rule's resources.
fn parse_evidence(
    texts: &[String],
    check: &Check,
    resource_type: &str,
) -> std::result::Result<Vec<Evidence>, String> {
    let mut evidence = Vec::new();
    for text in texts {
        let fact = Evidence::parse(text)?;
        if let Evidence::Column { table, .. } = &fact {
            let own = schema::table_for_resource_type(table.resource_type)
                .is_some_and(|t| t.name == table.name);
            let fits = match check {
                Check::Predicate { from, .. } => from.name == table.name,
                Check::Query(_) => own,
            };
            if !fits {
                return Err(format!(
                    "evidence `{fact}`: a column fact must be on the table of the rule's resources (`{}`); judge facts of other tables in the query, where NULL gives `unknown`",
                    match check {
                        Check::Predicate { from, .. } => from.name,
                        Check::Query(_) =>
                            schema::table_for_resource_type(resource_type).map_or("?", |t| t.name),
                    }
                ));
            }
        }
        evidence.push(fact);
    }
    Ok(evidence)
}

/// A framework name safe to put in a file name.
fn is_safe_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with(['.', '-'])
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
}

/// `file:line:column: message` from a YAML error, on one line.
pub fn yaml_error(path: &Path, err: &serde_saphyr::Error) -> Error {
    let inner = err.without_snippet();
    let message = inner.to_string();
    // The parser's own text may carry its position; keep the first line only.
    let message = message.lines().next().unwrap_or("").trim().to_string();
    let message = match message.rsplit_once(" at line ") {
        Some((before, _)) => before.to_string(),
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
