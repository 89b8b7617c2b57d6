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
    // Rule files are the user's, but may come from anywhere: each field
    // inert and on its row (a title cannot forge a row of its own).
    let field = crate::text::terminal_field;
    for r in &pack.rules {
        let ids = match framework {
            Some(f) => field(&format!(
                " [{f} {}]",
                r.frameworks
                    .get(f)
                    .map(|ids| ids.join(", "))
                    .unwrap_or_default()
            )),
            None => String::new(),
        };
        out.push_str(&format!(
            "{:<34} {:<9} {:<16} {}{ids}\n",
            field(&r.id),
            r.severity.as_str(),
            field(&r.resource_type),
            field(&r.title)
        ));
    }
    out.push_str(&format!(
        "{} rules; frameworks: {}\n",
        pack.rules.len(),
        pack.frameworks().join(", ")
    ));
    Ok(out)
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
    // One-line fields stay on their line; prose keeps its lines, indented.
    let field = crate::text::terminal_field;
    let prose = |text: &str| crate::text::terminal_text(text.trim()).replace('\n', "\n  ");
    let mut out = format!(
        "{} ({}, {}): {}\nsource: {}\n\nwhy it matters:\n  {}\n\nremediation:\n  {}\n",
        field(&rule.id),
        rule.severity,
        field(&rule.resource_type),
        field(&rule.title),
        field(&rule.source),
        prose(&rule.description),
        prose(&rule.remediation.text)
    );
    if let Some(cmd) = &rule.remediation.command {
        out.push_str(&format!("  $ {}\n", field(cmd)));
    }
    if !rule.params.is_empty() {
        out.push_str("\nparameters (effective value, default):\n");
        for (name, spec) in &rule.params {
            out.push_str(&format!(
                "  {} = {} (default {}): {}\n",
                field(name),
                field(&effective.get(name).map(|v| v.display()).unwrap_or_default()),
                field(&spec.default.display()),
                field(&spec.description)
            ));
        }
    }
    if !rule.frameworks.is_empty() {
        out.push_str("\nframeworks:\n");
        for (f, ids) in &rule.frameworks {
            out.push_str(&format!("  {f}: {}\n", field(&ids.join(", "))));
        }
    }
    if !rule.evidence.is_empty() {
        out.push_str(&format!(
            "\nrests on: {} (unknown where one was not gathered)\n",
            field(
                &rule
                    .evidence
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        ));
    }
    if !rule.references.is_empty() {
        out.push_str("\nreferences:\n");
        for r in &rule.references {
            out.push_str(&format!("  {}\n", field(r)));
        }
    }
    out.push_str(&format!(
        "\nquery:\n{}\n",
        crate::text::terminal_text(&rule.sql(&overrides)?)
    ));
    Ok(out)
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
