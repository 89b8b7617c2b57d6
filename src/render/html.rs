//! `report.html`: one self-contained file rendered with minijinja.
//!
//! Templates are data: the defaults in `report-templates/` are compiled in,
//! and a `--templates DIR` holding a file of the same name replaces that one
//! file (mdBook-style theming). Autoescape is on for every template, so any
//! AWS-sourced string is HTML-escaped wherever a template prints it.

use std::path::Path;

use std::borrow::Cow;

use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde::Serialize;

use crate::error::{Error, Result};

use super::ReportContext;
use crate::policy::Severity;
use crate::results::Status;

/// Default templates, by name.
pub const DEFAULT_TEMPLATES: &[(&str, &str)] = &[
    (
        "report.html",
        include_str!("../../report-templates/report.html"),
    ),
    (
        "report.css",
        include_str!("../../report-templates/report.css"),
    ),
    (
        "report.js",
        include_str!("../../report-templates/report.js"),
    ),
];

pub fn render_to(
    context: &ReportContext,
    templates: Option<&Path>,
    out: &mut super::OutputFile,
) -> Result<()> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    // `{{ n | count("account") }}`: "1 account", "2 accounts" (a second
    // argument for an irregular plural); `{{ n | verb("was", "were") }}`.
    env.add_filter(
        "count",
        |n: i64, one: String, many: Option<String>| -> String {
            let noun = match (n, many) {
                (1, _) => one,
                (_, Some(many)) => many,
                (_, None) => format!("{one}s"),
            };
            format!("{n} {noun}")
        },
    );
    env.add_filter("verb", |n: i64, one: String, many: String| -> String {
        if n == 1 { one } else { many }
    });
    for (name, default) in DEFAULT_TEMPLATES {
        let source = match templates.map(|dir| dir.join(name)) {
            Some(path) => read_template(&path)?.unwrap_or_else(|| default.to_string()),
            None => default.to_string(),
        };
        env.add_template_owned(name.to_string(), source)
            .map_err(|e| template_error(templates, &e))?;
    }
    let template = env
        .get_template("report.html")
        .map_err(|e| template_error(templates, &e))?;
    let data = findings_data(context)?;
    template
        .render_captured_to(
            minijinja::context! {
                findings_data => data,
                storage_text => context.meta.storage.as_ref().map(|s| s.describe()),
                ..minijinja::Value::from_serialize(context)
            },
            &mut *out,
        )
        .map_err(|e| match e.kind() {
            minijinja::ErrorKind::WriteFailure => {
                Error::io(out.path(), std::io::Error::other(e.to_string()))
            }
            _ => template_error(templates, &e),
        })?;
    Ok(())
}

/// A template file of `--templates DIR`: a regular file inside it, read
/// without following a link (a link could land any readable file in the
/// report). None when there is none of that name.
fn read_template(path: &Path) -> Result<Option<String>> {
    crate::paths::read_regular_no_follow(path, "templates inside the --templates directory")
}

fn template_error(dir: Option<&Path>, e: &minijinja::Error) -> Error {
    let name = e.name().unwrap_or("report.html");
    let location = match dir {
        Some(d) if d.join(name).is_file() => d.join(name).display().to_string(),
        _ => format!("report-templates/{name} (built in)"),
    };
    let line = e.line().map(|l| format!(":{l}")).unwrap_or_default();
    Error::input(format!(
        "{location}{line}: template error: {}",
        e.detail().unwrap_or(&e.to_string())
    ))
}

/// Non-passing findings as compact, dictionary-encoded JSON for the HTML
/// report's table (rendered in the browser, a page at a time, so 100k
/// findings stay a small file). Escaped so it can sit inside a `<script>`
/// element: no `<`, `>` or `&` survives as itself. Serialised from
/// borrowed rows, not built as a JSON tree (which cost hundreds of MB
/// at 100k AMIs); keys in the order a JSON object's sorted keys give.
#[allow(
    clippy::indexing_slicing,
    reason = "`names` holds every account of `accounts`: both are filled from the same findings"
)]
fn findings_data(context: &ReportContext) -> Result<String> {
    use std::collections::BTreeMap;
    fn index<'a>(
        map: &mut BTreeMap<&'a str, usize>,
        list: &mut Vec<&'a str>,
        key: &'a str,
    ) -> usize {
        *map.entry(key).or_insert_with(|| {
            list.push(key);
            list.len() - 1
        })
    }
    let (mut accounts, mut account_ix) = (Vec::new(), BTreeMap::new());
    let (mut regions, mut region_ix) = (Vec::new(), BTreeMap::new());
    let (mut reasons, mut reason_ix) = (Vec::new(), BTreeMap::new());
    let (mut waivers, mut waiver_ix) = (Vec::new(), BTreeMap::new());
    let mut names: BTreeMap<&str, &str> = BTreeMap::new();
    let mut rows = Vec::new();
    for (r, rule) in context.rules.iter().enumerate() {
        for f in rule.findings.iter() {
            let a = index(&mut account_ix, &mut accounts, &f.account_id);
            names.insert(&f.account_id, &f.account_name);
            let g = index(&mut region_ix, &mut regions, &f.region);
            let why = index(&mut reason_ix, &mut reasons, &f.reason);
            let waiver = if f.waiver_reason.is_empty() {
                -1
            } else {
                index(&mut waiver_ix, &mut waivers, &f.waiver_reason) as i64
            };
            let status = match f.status {
                Status::Fail => 0,
                Status::Unknown => 1,
                _ => 2,
            };
            // The command's identifiers are filled in by the page's
            // script: it gets them as shell words (text::shell_word),
            // the resource's only where it differs from the id.
            let word = crate::text::shell_word(&f.resource_id);
            let word = (word != *f.resource_id).then_some(word);
            rows.push(DataRow {
                cells: (
                    r,
                    a,
                    g,
                    status,
                    &f.resource_id,
                    &f.resource_name,
                    why,
                    waiver,
                ),
                word,
            });
        }
    }
    let data = FindingsData {
        accounts: accounts
            .iter()
            .map(|a| (*a, names[a], crate::text::shell_word(a)))
            .collect(),
        reasons,
        region_words: regions.iter().map(|r| crate::text::shell_word(r)).collect(),
        regions,
        rows,
        rules: context
            .rules
            .iter()
            .map(|r| DataRule {
                cmd: r.remediation_command.as_deref(),
                id: &r.id,
                severity: r.severity,
                title: &r.title,
            })
            .collect(),
        waivers,
    };
    let mut out = Vec::new();
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, ScriptSafe);
    data.serialize(&mut serializer)
        .map_err(|e| Error::Internal(format!("report.html: findings data: {e}")))?;
    String::from_utf8(out).map_err(|e| Error::Internal(format!("report.html: findings data: {e}")))
}

/// The HTML report's findings data; fields in sorted order (the order the
/// page's JSON has always had).
#[derive(Serialize)]
struct FindingsData<'a> {
    /// Account id, name, id as a shell word.
    accounts: Vec<(&'a str, &'a str, Cow<'a, str>)>,
    reasons: Vec<&'a str>,
    region_words: Vec<Cow<'a, str>>,
    regions: Vec<&'a str>,
    rows: Vec<DataRow<'a>>,
    rules: Vec<DataRule<'a>>,
    waivers: Vec<&'a str>,
}

#[derive(Serialize)]
struct DataRule<'a> {
    cmd: Option<&'a str>,
    id: &'a str,
    severity: Severity,
    title: &'a str,
}

/// One finding: rule, account, region, status (0 fail, 1 unknown, 2
/// waived), resource id and name, reason, waiver (-1 for none); then the
/// resource id as a shell word where it differs from the id.
struct DataRow<'a> {
    cells: (usize, usize, usize, u8, &'a str, &'a str, usize, i64),
    word: Option<Cow<'a, str>>,
}

impl Serialize for DataRow<'_> {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let (r, a, g, status, id, name, why, waiver) = self.cells;
        let mut seq = serializer.serialize_seq(Some(8 + usize::from(self.word.is_some())))?;
        seq.serialize_element(&r)?;
        seq.serialize_element(&a)?;
        seq.serialize_element(&g)?;
        seq.serialize_element(&status)?;
        seq.serialize_element(id)?;
        seq.serialize_element(name)?;
        seq.serialize_element(&why)?;
        seq.serialize_element(&waiver)?;
        if let Some(word) = &self.word {
            seq.serialize_element(word)?;
        }
        seq.end()
    }
}

/// Compact JSON that can sit inside a `<script>` element: `<`, `>`, `&`
/// and the two JavaScript line terminators are written as `\u` escapes.
/// They can only occur inside strings, and every string's text passes
/// through `write_string_fragment`.
struct ScriptSafe;

impl serde_json::ser::Formatter for ScriptSafe {
    #[allow(
        clippy::indexing_slicing,
        reason = "`start` and `at` are char boundaries of `fragment` (char_indices)"
    )]
    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        let bytes = fragment.as_bytes();
        let mut start = 0;
        for (at, c) in fragment.char_indices() {
            if matches!(c, '<' | '>' | '&' | '\u{2028}' | '\u{2029}') {
                writer.write_all(&bytes[start..at])?;
                write!(writer, "\\u{:04x}", u32::from(c))?;
                start = at + c.len_utf8();
            }
        }
        writer.write_all(&bytes[start..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_safe_json_escapes_what_could_end_a_script_element() {
        let mut out = Vec::new();
        let mut serializer = serde_json::Serializer::with_formatter(&mut out, ScriptSafe);
        ["</script><b>&amp;", "a\u{2028}b\u{2029}c", "é \"q\" \\ \n"]
            .serialize(&mut serializer)
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            r#"["\u003c/script\u003e\u003cb\u003e\u0026amp;","a\u2028b\u2029c","é \"q\" \\ \n"]"#
        );
        // Still the same strings to a JSON reader.
        let back: Vec<String> = serde_json::from_str(&text).unwrap();
        assert_eq!(back[0], "</script><b>&amp;");
        assert_eq!(back[1], "a\u{2028}b\u{2029}c");
    }
}
