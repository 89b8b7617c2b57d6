//! Compiling a rule to the SQL the evaluator runs.
//!
//! Parameters are rendered by minijinja: `{{ name }}` becomes an SQL
//! literal (strings quoted, lists parenthesised), `{{ name | length }}` a
//! number and `{{ name | text }}` the value as plain text escaped to sit
//! inside an SQL string; never raw SQL. Reasons add `{column}` placeholders
//! for a row's values. Which SQL shape a short-form rule needs is decided on
//! the parsed predicate (sqlparser), not on its text.

use std::collections::BTreeMap;
use std::ops::ControlFlow;

use minijinja::value::Value as JinjaValue;
use minijinja::{Environment, UndefinedBehavior};
use sqlparser::ast::{Expr, visit_expressions};
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, Tokenizer};

use super::params::quote;
use super::{Check, ParamValue, Rule};
use crate::status::Status;

/// How a rendered parameter is written.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Literal {
    /// As an SQL literal (in SQL text).
    Sql,
    /// As plain text (in a reason, which becomes one SQL string).
    Text,
}

pub fn compile(rule: &Rule, params: &BTreeMap<String, ParamValue>) -> Result<String, String> {
    match &rule.check {
        Check::Query(query) => render(query, params, Literal::Sql).and_then(bounded),
        Check::Predicate {
            from,
            scope,
            fail_when,
            reason,
        } => {
            let predicate = bounded(render(fail_when, params, Literal::Sql)?)?;
            let scope = scope
                .as_deref()
                .map(|s| render(s, params, Literal::Sql).and_then(bounded))
                .transpose()?;
            let reason = reason_expr(reason.as_deref().unwrap_or(&rule.title), params)?;
            let (id, name, table) = (from.resource_id, from.resource_name, from.name);
            let columns = format!(
                "account_id, region, CAST({id} AS VARCHAR) AS resource_id, CAST({name} AS VARCHAR) AS resource_name"
            );
            let subquery = has_subquery(&predicate)?
                || scope
                    .as_deref()
                    .map(has_subquery)
                    .transpose()?
                    .unwrap_or(false);
            // Three-valued on purpose: a predicate or scope that is NULL
            // (data not known) gives `unknown`, never `pass`; a row the
            // scope does not know whether to judge is judged `unknown`.
            if !subquery {
                let (in_scope, scope_unknown) = match &scope {
                    Some(s) => (
                        format!(" WHERE COALESCE(({s}), TRUE)"),
                        format!("WHEN ({s}) IS NULL THEN "),
                    ),
                    None => (String::new(), String::new()),
                };
                let status_unknown = if scope_unknown.is_empty() {
                    String::new()
                } else {
                    format!("{scope_unknown}'unknown' ")
                };
                let reason_unknown = if scope_unknown.is_empty() {
                    String::new()
                } else {
                    format!("{scope_unknown}'needed data is missing' ")
                };
                return Ok(format!(
                    "SELECT {columns},\n\
                     CASE {status_unknown}WHEN ({predicate}) THEN 'fail' WHEN NOT ({predicate}) THEN 'pass' ELSE 'unknown' END AS status,\n\
                     CASE {reason_unknown}WHEN ({predicate}) THEN CAST({reason} AS VARCHAR) WHEN NOT ({predicate}) THEN '' ELSE 'needed data is missing' END AS reason\n\
                     FROM {table}{in_scope}"
                ));
            }
            // polars evaluates `IN (subquery)` only in WHERE clauses: one SELECT per outcome.
            let (judged, scope_null) = match &scope {
                Some(s) => (format!("({s}) AND "), format!("(({s}) IS NULL) OR ")),
                None => (String::new(), String::new()),
            };
            let select = |status: &str, reason: &str| {
                format!(
                    "SELECT {columns}, '{status}' AS status, CAST({reason} AS VARCHAR) AS reason FROM {table}"
                )
            };
            Ok(format!(
                "{} WHERE {judged}({predicate})\nUNION ALL\n{} WHERE {judged}NOT ({predicate})\nUNION ALL\n{} WHERE {scope_null}({judged}(({predicate}) IS NULL))",
                select(Status::Fail.as_str(), &reason),
                select(Status::Pass.as_str(), "''"),
                select(Status::Unknown.as_str(), "'needed data is missing'"),
            ))
        }
    }
}

/// A rule's template only fills in parameters: `{{ name }}`,
/// `{{ name | length }}` or `{{ name | text }}`, nothing else. Statements,
/// loops and expressions (`'x' * 100000000`, `~`) could run or allocate
/// without bound before any check of the SQL they make.
fn check_template(template: &str) -> Result<(), String> {
    const ALLOWED: &str =
        "a rule's SQL may use only `{{ name }}`, `{{ name | length }}` and `{{ name | text }}`";
    if template.contains("{%") || template.contains("{#") {
        return Err(format!("{ALLOWED} (no `{{%` statements or `{{#` comments)"));
    }
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let after = rest.get(start + 2..).unwrap_or("");
        let end = after
            .find("}}")
            .ok_or_else(|| format!("{ALLOWED}; a `{{{{` is not closed"))?;
        let inner = after.get(..end).unwrap_or("").trim();
        let (name, filter) = match inner.split_once('|') {
            Some((name, filter)) => (name.trim(), Some(filter.trim())),
            None => (inner, None),
        };
        let is_name = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !is_name || filter.is_some_and(|f| f != "length" && f != "text") {
            return Err(format!(
                "{ALLOWED}, not `{{{{ {} }}}}`",
                one_line(inner).chars().take(80).collect::<String>()
            ));
        }
        rest = after.get(end + 2..).unwrap_or("");
    }
    Ok(())
}

/// The most bytes one SQL text of a rule may have once its parameters are
/// rendered (the largest built-in rule has under 8 KiB).
const MAX_SQL_BYTES: usize = 256 << 10;

/// The most words and operators one SQL text may hold. sqlparser bounds
/// nesting (parentheses, subqueries) but not a chain `a AND b AND ...` (or
/// XOR, `||`, `AT TIME ZONE`, UNION, JOIN, any binary form), which parses
/// to a tree as deep as it is long; the evaluator walks that tree
/// recursively and a chain of 3,000 overflowed the rule threads' stack.
/// Every keyword, name and operator counts, so no form of chain escapes;
/// literals and commas do not, so a long list (`IN (...)`) is not bounded
/// here (only by [`MAX_SQL_BYTES`]).
const MAX_SQL_TERMS: usize = 2500;

/// `sql` when it is within the bounds above, so that a hostile or runaway
/// rule is a load error naming it, never a crash of the audit.
fn bounded(sql: String) -> Result<String, String> {
    check_sql_bounds(&sql)?;
    Ok(sql)
}

/// Whether SQL is small and shallow enough to plan: the bounds a rule's
/// SQL is held to, and any SQL `query` runs.
pub fn check_sql_bounds(sql: &str) -> Result<(), String> {
    if sql.len() > MAX_SQL_BYTES {
        return Err(format!(
            "its SQL is {} KiB once parameters are filled in; a rule's SQL may be at most {} KiB: split the rule",
            sql.len() >> 10,
            MAX_SQL_BYTES >> 10
        ));
    }
    let tokens = Tokenizer::new(&GenericDialect, sql)
        .tokenize()
        .map_err(|e| format!("cannot read `{}`: {e}", clipped(sql)))?;
    let terms = tokens.iter().filter(|t| is_term(t)).count();
    if terms > MAX_SQL_TERMS {
        return Err(format!(
            "its SQL has {terms} words and operators; a rule may have at most {MAX_SQL_TERMS} in one expression or query: split the rule, or compare with a list (`IN (...)`)"
        ));
    }
    Ok(())
}

/// SQL on one line, cut to what an error line can show.
fn clipped(sql: &str) -> String {
    let line = one_line(sql);
    if line.chars().count() <= 200 {
        return line;
    }
    format!("{}…", line.chars().take(199).collect::<String>())
}

/// Whether a token is a word (keyword or name) or an operator: anything
/// but a literal, a comma, a parenthesis or white space.
fn is_term(token: &Token) -> bool {
    match token {
        Token::Word(_) => true,
        Token::Number(..)
        | Token::Char(_)
        | Token::Comma
        | Token::Whitespace(_)
        | Token::LParen
        | Token::RParen
        | Token::Period
        | Token::SemiColon
        | Token::EOF => false,
        // Literals and placeholders display with a quote or `$`; operators
        // never do.
        other => !other.to_string().contains(['\'', '"', '$']),
    }
}

/// Whether an SQL expression contains a subquery (`IN (SELECT ...)`,
/// `EXISTS`, a scalar subquery), from its parse tree.
fn has_subquery(expression: &str) -> Result<bool, String> {
    let expr = Parser::new(&GenericDialect)
        .try_with_sql(expression)
        .and_then(|mut p| p.parse_expr())
        .map_err(|e| format!("cannot parse `{}`: {e}", clipped(expression)))?;
    let found = visit_expressions(&expr, |e| match e {
        Expr::Subquery(_) | Expr::InSubquery { .. } | Expr::Exists { .. } => ControlFlow::Break(()),
        _ => ControlFlow::Continue(()),
    });
    Ok(found.is_break())
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Renders `{{ param }}` expressions with minijinja.
fn render(
    template: &str,
    params: &BTreeMap<String, ParamValue>,
    how: Literal,
) -> Result<String, String> {
    if !template.contains("{{") && !template.contains("{%") && !template.contains("{#") {
        return Ok(template.to_string());
    }
    check_template(template)?;
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    // `text`: the plain value, quote-escaped when it lands in SQL text.
    env.add_filter("text", move |value: JinjaValue| -> JinjaValue {
        let text = display(&value);
        JinjaValue::from_safe_string(match how {
            Literal::Sql => text.replace('\'', "''"),
            Literal::Text => text,
        })
    });
    env.set_formatter(move |out, _state, value| {
        let rendered = if value.is_safe() || how == Literal::Text {
            display(value)
        } else {
            sql_literal(value)
        };
        out.write_str(&rendered).map_err(minijinja::Error::from)
    });
    let context: BTreeMap<&str, JinjaValue> = params
        .iter()
        .map(|(k, v)| (k.as_str(), param_value(v)))
        .collect();
    let compiled = env
        .template_from_str(template)
        .map_err(|e| format!("bad template: {e}"))?;
    let mut undeclared: Vec<String> = compiled
        .undeclared_variables(false)
        .into_iter()
        .filter(|name| !params.contains_key(name))
        .collect();
    undeclared.sort();
    if let Some(name) = undeclared.first() {
        return Err(format!(
            "uses parameter `{name}` that is not declared under `params`"
        ));
    }
    compiled.render(context).map_err(|e| {
        let detail = e.detail().unwrap_or_default();
        match e.kind() {
            minijinja::ErrorKind::UndefinedError => format!(
                "uses a parameter that is not declared under `params` ({})",
                one_line(template).chars().take(80).collect::<String>()
            ),
            minijinja::ErrorKind::UnknownFilter => {
                format!("unknown filter: {detail} (use `length` or `text`)")
            }
            _ => format!("bad template: {e}"),
        }
    })
}

fn param_value(value: &ParamValue) -> JinjaValue {
    match value {
        ParamValue::Bool(b) => JinjaValue::from(*b),
        ParamValue::Int(i) => JinjaValue::from(*i),
        ParamValue::Float(f) => JinjaValue::from(*f),
        ParamValue::Str(s) => JinjaValue::from(s.as_str()),
        ParamValue::List(items) => JinjaValue::from(items.clone()),
    }
}

/// A value as plain text: lists joined with `, `.
fn display(value: &JinjaValue) -> String {
    match value.try_iter() {
        Ok(items) if value.kind() == minijinja::value::ValueKind::Seq => items
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
            .collect::<Vec<_>>()
            .join(", "),
        _ => value
            .as_str()
            .map_or_else(|| value.to_string(), str::to_string),
    }
}

/// A value as an SQL literal. An empty list becomes a list holding one
/// value no AWS identifier, region or tag key can take, so `IN` is false
/// and `NOT IN` true (a list holding NULL would make both unknown).
fn sql_literal(value: &JinjaValue) -> String {
    use minijinja::value::ValueKind;
    match value.kind() {
        ValueKind::Bool => if value.is_true() { "TRUE" } else { "FALSE" }.to_string(),
        ValueKind::Number => match (i64::try_from(value.clone()), f64::try_from(value.clone())) {
            (Ok(i), _) => i.to_string(),
            (_, Ok(f)) => format!("{f:?}"),
            _ => value.to_string(),
        },
        ValueKind::Seq => {
            let items: Vec<String> = value
                .try_iter()
                .map(|it| it.map(|v| quote(&display(&v))).collect())
                .unwrap_or_default();
            if items.is_empty() {
                "('<empty list>')".to_string()
            } else {
                format!("({})", items.join(", "))
            }
        }
        _ => quote(&display(value)),
    }
}

/// Compiles a reason template (`{column}` for columns, `{{ param }}` for
/// parameters) into an SQL string expression.
fn reason_expr(template: &str, params: &BTreeMap<String, ParamValue>) -> Result<String, String> {
    let mut parts: Vec<String> = Vec::new();
    for piece in split_columns(template)? {
        match piece {
            Piece::Text(t) => {
                let text = render(t, params, Literal::Text)?;
                if !text.is_empty() {
                    parts.push(quote(&text));
                }
            }
            Piece::Column(c) => parts.push(format!("COALESCE(CAST({c} AS VARCHAR), '?')")),
        }
    }
    Ok(match parts.len() {
        0 => "''".to_string(),
        1 => parts.remove(0),
        _ => format!("concat({})", parts.join(", ")),
    })
}

enum Piece<'t> {
    Text(&'t str),
    Column(&'t str),
}

/// Splits a reason into text (which may hold `{{ ... }}`) and `{column}`
/// placeholders. Positions come from `find`, so every slice falls on a
/// character boundary whatever the text holds (`für {name}`).
fn split_columns(template: &str) -> Result<Vec<Piece<'_>>, String> {
    let mut pieces = Vec::new();
    let (mut start, mut i) = (0, 0);
    let from = |at: usize| template.get(at..).unwrap_or_default();
    while let Some(offset) = from(i).find('{') {
        let open = i + offset;
        if from(open).starts_with("{{") {
            let end = from(open)
                .find("}}")
                .ok_or("`reason` has `{{` without a closing `}}`")?;
            i = open + end + 2;
            continue;
        }
        let end = from(open)
            .find('}')
            .ok_or("`reason` has `{` without a closing `}`")?;
        let column = template
            .get(open + 1..open + end)
            .unwrap_or_default()
            .trim();
        if column.is_empty()
            || !column
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(format!(
                "`reason` placeholder `{{{column}}}` is not a column name"
            ));
        }
        if open > start {
            pieces.push(Piece::Text(template.get(start..open).unwrap_or_default()));
        }
        pieces.push(Piece::Column(column));
        i = open + end + 1;
        start = i;
    }
    if start < template.len() {
        pieces.push(Piece::Text(from(start)));
    }
    Ok(pieces)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_hold_any_text_around_their_placeholders() {
        let pieces =
            split_columns("Veraltetes AMI für {name}: {{ max }} Tage, älter als {age_days} ✓")
                .unwrap();
        let text: Vec<String> = pieces
            .iter()
            .map(|p| match p {
                Piece::Text(t) => format!("T:{t}"),
                Piece::Column(c) => format!("C:{c}"),
            })
            .collect();
        assert_eq!(
            text,
            [
                "T:Veraltetes AMI für ",
                "C:name",
                "T:: {{ max }} Tage, älter als ",
                "C:age_days",
                "T: ✓"
            ]
        );
        assert!(split_columns("ü {").is_err());
    }

    fn params(list: &[(&str, ParamValue)]) -> BTreeMap<String, ParamValue> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn parameters_render_as_literals_never_as_sql() {
        let p = params(&[
            ("n", ParamValue::Int(90)),
            ("name", ParamValue::Str("x' OR '1'='1".into())),
            (
                "tags",
                ParamValue::List(vec!["Owner".into(), "It's".into()]),
            ),
            ("nothing", ParamValue::List(vec![])),
            ("on", ParamValue::Bool(true)),
            ("ratio", ParamValue::Float(0.5)),
        ]);
        let sql = |t: &str| render(t, &p, Literal::Sql).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(sql("a > {{ n }}"), "a > 90");
        assert_eq!(sql("b = {{ name }}"), "b = 'x'' OR ''1''=''1'");
        assert_eq!(sql("k IN {{ tags }}"), "k IN ('Owner', 'It''s')");
        assert_eq!(sql("k IN {{ nothing }}"), "k IN ('<empty list>')");
        assert_eq!(sql("{{ tags | length }}"), "2");
        assert_eq!(sql("'{{ tags | text }}'"), "'Owner, It''s'");
        assert_eq!(sql("{{ on }} {{ ratio }}"), "TRUE 0.5");
        assert!(render("{{ missing }}", &p, Literal::Sql).is_err());
        assert!(render("{{ n | frobnicate }}", &p, Literal::Sql).is_err());
    }

    #[test]
    fn reasons_mix_columns_and_parameters() {
        let p = params(&[("pattern", ParamValue::Str(r"^[a-z]+-\d{8}$".into()))]);
        let expr = reason_expr("`{name}` does not match {{ pattern }}", &p)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            expr,
            r"concat('`', COALESCE(CAST(name AS VARCHAR), '?'), '` does not match ^[a-z]+-\d{8}$')"
        );
        assert!(reason_expr("{not a column}", &p).is_err());
    }

    #[test]
    fn subqueries_are_found_in_the_parse_tree_not_the_text() {
        assert!(!has_subquery("selected = TRUE AND age_days > 3").unwrap_or(true));
        assert!(has_subquery("image_id IN (SELECT image_id FROM images)").unwrap_or(false));
        assert!(has_subquery("EXISTS (SELECT 1 FROM images)").unwrap_or(false));
        assert!(has_subquery("a = (SELECT max(b) FROM t)").unwrap_or(false));
        assert!(has_subquery("a = ").is_err());
    }

    #[test]
    fn a_chain_of_operators_is_bounded_and_a_list_is_not() {
        // n terms joined by an operator: 2n - 1 words and operators.
        let chain = |n: usize, op: &str| vec!["public"; n].join(op);
        assert!(bounded(chain(MAX_SQL_TERMS / 2, " AND ")).is_ok());
        for op in [" AND ", " XOR ", " || ", " AT TIME ZONE ", " OVERLAPS "] {
            let refused = bounded(chain(MAX_SQL_TERMS / 2 + 2, op)).unwrap_err();
            assert!(refused.contains("words and operators"), "{op}: {refused}");
        }
        let symbols = vec!["1"; MAX_SQL_TERMS + 2].join("+");
        assert!(bounded(symbols).is_err());
        // A long list of approved accounts is not a chain.
        let accounts: Vec<String> = (0..10_000).map(|i| format!("'{i:012}'")).collect();
        assert!(bounded(format!("owner_id NOT IN ({})", accounts.join(", "))).is_ok());
        // Quotes inside literals are not operators.
        assert!(bounded(vec!["'=' || ''"; 600].join(", ")).is_ok());
        assert!(bounded("x".repeat(MAX_SQL_BYTES + 1)).is_err());
    }

    #[test]
    fn templates_only_fill_in_parameters() {
        let many = ParamValue::List((0..10_000).map(|i| i.to_string()).collect());
        let p = params(&[("ids", many), ("x", ParamValue::Str("a".into()))]);
        for refused in [
            "{% for i in ids %}{% for j in ids %}x{% endfor %}{% endfor %}",
            "{{ 'x' * 100000000 }}",
            "{{ x ~ x ~ x }}",
            "{{ x | upper }}",
            "{# note #}",
            "{{ x",
        ] {
            let err = render(refused, &p, Literal::Sql).unwrap_err();
            assert!(err.contains("may use only"), "{refused}: {err}");
        }
        assert_eq!(
            render("{{ ids | length }} {{x|text}}", &p, Literal::Sql).unwrap(),
            "10000 a"
        );
    }

    #[test]
    fn built_in_rules_stay_far_inside_the_bounds() {
        let pack = crate::policy::pack::load_builtin().expect("built-in pack");
        for rule in &pack.rules {
            let sql = rule.sql(&Default::default()).expect("compiles");
            let tokens = Tokenizer::new(&GenericDialect, &sql)
                .tokenize()
                .expect("tokens");
            let terms = tokens.iter().filter(|t| is_term(t)).count();
            // The compiled SQL repeats a predicate three times; each text
            // a user writes is bounded alone.
            assert!(
                terms < MAX_SQL_TERMS && sql.len() < MAX_SQL_BYTES / 8,
                "{}: {terms} words and operators, {} bytes",
                rule.id,
                sql.len()
            );
        }
    }
}
