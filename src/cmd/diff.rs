//! `amiaudit diff OLD NEW [--out DIR]`: drift between two audits
//! (directories or S3 prefixes), each verified first.

use std::path::Path;

use super::Outcome;
use crate::aws::Connection;
use crate::deliver::Location;
use crate::error::Result;
use crate::output::Staging;

pub fn run(
    old: &Location,
    new: &Location,
    connection: &Connection,
    out: Option<&Path>,
    allow_unverified: bool,
) -> Result<Outcome> {
    let mut warnings = Vec::new();
    let old = crate::settings::read_baseline(old, connection, allow_unverified, &mut warnings)?;
    let new = crate::settings::read_baseline(new, connection, allow_unverified, &mut warnings)?;
    let d = crate::diff::compare(&old, &new);
    // The summary quotes `collected_at` of an audit read back: not ours.
    let mut text = crate::text::terminal_field(&d.summary_line());
    text.push('\n');
    for c in d
        .changes
        .iter()
        .filter(|c| c.change != crate::diff::ChangeKind::Persisting)
    {
        text.push_str(&crate::text::terminal_line(&format!(
            "  {:<12} {:<32} {} {} {}\n",
            c.change.as_str(),
            c.rule_id,
            c.account_id,
            c.region,
            c.resource_id
        )));
    }
    for w in &d.waivers {
        text.push_str(&crate::text::terminal_line(&format!(
            "  waiver {:<13} {} ({})\n",
            w.change.as_str(),
            w.waiver.rule,
            w.waiver.reason
        )));
    }
    if let Some(dir) = out {
        let staging = Staging::begin(dir, &crate::diff::OUTPUT, &super::OUTPUT_KINDS)?;
        for (name, body) in [("diff.json", d.json()?), ("diff.csv", d.csv()?)] {
            let path = staging.dir().join(name);
            std::fs::write(&path, body).map_err(|e| crate::error::Error::io(&path, e))?;
        }
        let committed = staging.commit()?;
        warnings.extend(super::kept_warning(&committed));
        let destination = committed.path;
        for name in ["diff.json", "diff.csv"] {
            text.push_str(&format!("wrote {}\n", destination.join(name).display()));
        }
    }
    Ok(Outcome {
        exit_code: crate::error::EXIT_OK,
        stdout: text,
        stderr: warnings
            .into_iter()
            .map(|w| format!("warning: {w}"))
            .collect(),
    })
}
