//! `amiaudit policies list | explain | validate`.

use std::path::{Path, PathBuf};

use crate::config;
use crate::error::{Error, Result};
use crate::evaluate::evaluate;
use crate::inventory;
use crate::policy;
use crate::settings::load_pack;

/// `amiaudit policies list`: one line per rule.
pub fn list(dirs: &[PathBuf], framework: Option<&str>) -> Result<String> {
    let mut pack = load_pack(dirs)?;
    if let Some(f) = framework {
        policy::filter_framework(&mut pack, f)?;
    }
    let mut out = format!(
        "{:<34} {:<9} {:<16} {}\n",
        "RULE", "SEVERITY", "RESOURCE", "TITLE"
    );
    for r in &pack.rules {
        let ids = match framework {
            Some(f) => format!(" [{f} {}]", r.frameworks[f].join(", ")),
            None => String::new(),
        };
        out.push_str(&format!(
            "{:<34} {:<9} {:<16} {}{ids}\n",
            r.id,
            r.severity.as_str(),
            r.resource_type,
            r.title
        ));
    }
    out.push_str(&format!(
        "{} rules; frameworks: {}\n",
        pack.rules.len(),
        pack.frameworks().join(", ")
    ));
    // Rule files are the user's, but may come from anywhere: inert text.
    Ok(crate::text::terminal_text(&out))
}

/// `amiaudit policies explain RULE`: rationale, parameters, frameworks, SQL.
pub fn explain(
    dirs: &[PathBuf],
    config: Option<&Path>,
    rule_id: &str,
    params: &[String],
) -> Result<String> {
    let config = config::load(config)?;
    let dirs = if dirs.is_empty() {
        &config.audit.policies
    } else {
        dirs
    };
    let pack = load_pack(dirs)?;
    let rule = pack.rules.iter().find(|r| r.id == rule_id).ok_or_else(|| {
        Error::input(format!(
            "no rule `{rule_id}` (see `amiaudit policies list`)"
        ))
    })?;
    let overrides = policy::parse_param_flags(&pack, params, config.param_overrides(&pack)?)?;
    let effective = rule.effective_params(&overrides);
    let mut out = format!(
        "{} ({}, {}): {}\nsource: {}\n\nwhy it matters:\n  {}\n\nremediation:\n  {}\n",
        rule.id,
        rule.severity,
        rule.resource_type,
        rule.title,
        rule.source,
        rule.description.trim(),
        rule.remediation.text.trim()
    );
    if let Some(cmd) = &rule.remediation.command {
        out.push_str(&format!("  $ {cmd}\n"));
    }
    if !rule.params.is_empty() {
        out.push_str("\nparameters (effective value, default):\n");
        for (name, spec) in &rule.params {
            out.push_str(&format!(
                "  {name} = {} (default {}): {}\n",
                effective[name].display(),
                spec.default.display(),
                spec.description
            ));
        }
    }
    if !rule.frameworks.is_empty() {
        out.push_str("\nframeworks:\n");
        for (f, ids) in &rule.frameworks {
            out.push_str(&format!("  {f}: {}\n", ids.join(", ")));
        }
    }
    if !rule.evidence.is_empty() {
        out.push_str(&format!(
            "\nrests on: {} (unknown where one was not gathered)\n",
            rule.evidence
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if !rule.references.is_empty() {
        out.push_str("\nreferences:\n");
        for r in &rule.references {
            out.push_str(&format!("  {r}\n"));
        }
    }
    out.push_str(&format!("\nquery:\n{}\n", rule.sql(&overrides)?));
    Ok(crate::text::terminal_text(&out))
}

/// `amiaudit policies validate [DIR]`: parse every file and dry-run every
/// query against an empty inventory of the right schema.
pub fn validate(dirs: &[PathBuf]) -> Result<String> {
    let pack = load_pack(dirs)?;
    let empty = inventory::empty(chrono::DateTime::UNIX_EPOCH)?;
    let evaluation = evaluate(&empty, &pack.rules, &policy::ParamOverrides::new());
    if let Some(first) = evaluation.rule_errors.first() {
        let more = evaluation.rule_errors.len() - 1;
        let tail = if more > 0 {
            format!(" (and {more} more rule errors)")
        } else {
            String::new()
        };
        return Err(Error::Rule {
            file: first.file.clone(),
            rule: first.rule_id.clone(),
            message: format!("{}{tail}", first.message),
        });
    }
    Ok(format!(
        "{} rules valid ({} frameworks)\n",
        pack.rules.len(),
        pack.frameworks().len()
    ))
}
