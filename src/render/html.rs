//! `report.html`: one self-contained file rendered with minijinja.
//!
//! Templates are data: the defaults in `report-templates/` are compiled in,
//! and a `--templates DIR` holding a file of the same name replaces that one
//! file (mdBook-style theming). Autoescape is on for every template, so any
//! AWS-sourced string is HTML-escaped wherever a template prints it.

use std::path::Path;

use minijinja::{AutoEscape, Environment, UndefinedBehavior};

use crate::error::{Error, Result};

use super::ReportContext;

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
    let data = context.findings_data()?;
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
