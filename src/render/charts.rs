//! Inline SVG charts for the HTML report, drawn here so the template stays
//! declarative. Every label is escaped: account names come from AWS.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::inventory::{Inventory, i64_column};
use crate::results::Summary;

use super::RuleSection;

use crate::text::xml_escape as esc;

#[derive(Debug, Clone, serde::Serialize)]
pub struct Charts {
    pub failures_by_rule: String,
    pub heatmap: String,
    pub age_histogram: String,
    pub by_region: String,
    /// Running instances and Auto Scaling groups by versions behind the newest.
    pub adoption_behind: String,
    /// The same, by the age of the AMI they run or launch.
    pub adoption_age: String,
}

fn bars(title: &str, rows: &[(String, u64, &str)], label_width: u32) -> String {
    let max = rows.iter().map(|r| r.1).max().unwrap_or(0).max(1) as f64;
    let (bar_h, gap, chart_w) = (16u32, 4u32, 360f64);
    let height = rows.len() as u32 * (bar_h + gap) + 24;
    let width = label_width + chart_w as u32 + 60;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-label=\"{}\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" font-size=\"11\" font-family=\"system-ui, sans-serif\"><title>{}</title>",
        esc(title),
        esc(title)
    );
    // About 6.5 px a character at 11 px: a longer label is cut to fit its
    // column, whole in its tooltip, never clipped at the chart's edge.
    let fits = (label_width as usize - 6) * 2 / 13;
    for (i, (label, value, color)) in rows.iter().enumerate() {
        let y = i as u32 * (bar_h + gap) + 4;
        let w = (*value as f64 / max * chart_w).round();
        let _ = write!(
            svg,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\"><title>{}</title>{}</text><rect x=\"{}\" y=\"{y}\" width=\"{w}\" height=\"{bar_h}\" fill=\"{color}\"/><text x=\"{}\" y=\"{}\">{value}</text>",
            label_width - 6,
            y + 12,
            esc(label),
            esc(&cut_to(label, fits)),
            label_width,
            label_width as f64 + w + 4.0,
            y + 12
        );
    }
    svg.push_str("</svg>");
    svg
}

/// `text` cut to `chars` characters, the cut marked.
fn cut_to(text: &str, chars: usize) -> String {
    if text.chars().count() <= chars {
        return text.to_string();
    }
    let kept: String = text.chars().take(chars.saturating_sub(1)).collect();
    format!("{kept}…")
}

fn severity_color(severity: crate::policy::Severity) -> &'static str {
    use crate::policy::Severity::*;
    match severity {
        Critical => "#8b0000",
        High => "#c0392b",
        Medium => "#d68910",
        Low => "#2471a3",
        Info => "#717d7e",
    }
}

/// Instances and groups per bucket, side by side, one colour each.
fn adoption_bars(title: &str, buckets: &[crate::results::adoption::Bucket]) -> String {
    let rows: Vec<(String, u64, &str)> = buckets
        .iter()
        .flat_map(|b| {
            [
                (format!("{}: instances", b.label), b.instances, "#2471a3"),
                (format!("{}: groups", b.label), b.groups, "#7d3c98"),
            ]
        })
        .collect();
    bars(title, &rows, 170)
}

pub fn build(
    inventory: &Inventory,
    summary: &Summary,
    rules: &[RuleSection],
    adoption: &crate::results::adoption::Adoption,
) -> crate::error::Result<Charts> {
    // Failures by rule, most first.
    let mut by_rule: Vec<(String, u64, &str)> = rules
        .iter()
        .filter(|r| r.counts.fail > 0)
        .map(|r| (r.id.clone(), r.counts.fail, severity_color(r.severity)))
        .collect();
    by_rule.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let failures_by_rule = bars("Failing results by rule", &by_rule, 230);

    let by_region: Vec<(String, u64, &str)> = summary
        .regions
        .iter()
        .map(|(region, c)| (region.clone(), c.fail, "#c0392b"))
        .collect();
    let by_region = bars("Failing results by region", &by_region, 120);

    let buckets: [(&str, i64, i64); 6] = [
        ("0-30 days", i64::MIN, 30),
        ("31-90 days", 31, 90),
        ("91-180 days", 91, 180),
        ("181-365 days", 181, 365),
        ("1-2 years", 366, 730),
        ("over 2 years", 731, i64::MAX),
    ];
    let ages: Vec<i64> = i64_column(inventory.table("images")?, "age_days")?
        .into_iter()
        .flatten()
        .collect();
    let age_rows: Vec<(String, u64, &str)> = buckets
        .iter()
        .map(|(label, lo, hi)| {
            let n = ages.iter().filter(|a| **a >= *lo && **a <= *hi).count() as u64;
            (label.to_string(), n, "#2471a3")
        })
        .collect();
    let age_histogram = bars("AMIs by age", &age_rows, 120);

    Ok(Charts {
        failures_by_rule,
        heatmap: heatmap(summary, rules, inventory.coverage()),
        age_histogram,
        by_region,
        adoption_behind: adoption_bars(
            "Instances and Auto Scaling groups by versions behind the newest",
            &adoption.versions_behind,
        ),
        adoption_age: adoption_bars(
            "Instances and Auto Scaling groups by the age of their AMI",
            &adoption.age_in_use,
        ),
    })
}

/// How much of an account the audit saw, as its heat map row says it.
fn account_seen(coverage: &crate::inventory::Coverage, account: &str) -> &'static str {
    let statuses: Vec<_> = coverage
        .regions_of(account)
        .filter_map(|region| coverage.status(account, region))
        .collect();
    if statuses.iter().all(|s| !s.seen()) {
        " (not scanned)"
    } else if statuses
        .iter()
        .any(|s| *s != crate::inventory::ScanStatus::Ok)
    {
        " (scanned in part)"
    } else {
        ""
    }
}

/// Accounts (worst 40) x rules, cell shade by failing results. A cell with
/// no failure but results not known is drawn as unknown, and an account the
/// audit did not scan says so: a blank row is never a clean one unseen.
fn heatmap(
    summary: &Summary,
    rules: &[RuleSection],
    coverage: &crate::inventory::Coverage,
) -> String {
    let accounts: Vec<_> = summary.accounts.iter().take(40).collect();
    let max = summary
        .fail_matrix
        .values()
        .copied()
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let mut unknown: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    for rule in rules {
        for f in rule.findings.iter() {
            if f.status == crate::results::Status::Unknown {
                *unknown
                    .entry((&*f.account_id, rule.id.as_str()))
                    .or_default() += 1;
            }
        }
    }
    let (cell, label_w, header_h) = (16u32, 300u32, 150u32);
    let width = label_w + rules.len() as u32 * cell + 10;
    let height = header_h + accounts.len() as u32 * cell + 10;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-label=\"Failing results by account and rule\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" font-size=\"10\" font-family=\"system-ui, sans-serif\"><title>Failing results by account and rule</title>"
    );
    for (j, rule) in rules.iter().enumerate() {
        let x = label_w + j as u32 * cell + cell / 2 + 3;
        let _ = write!(
            svg,
            "<text transform=\"translate({x},{}) rotate(-60)\"><title>{}</title>{}</text>",
            header_h - 4,
            esc(&rule.id),
            esc(&cut_to(&rule.id, 26))
        );
    }
    let index: BTreeMap<(&str, &str), u64> = summary
        .fail_matrix
        .iter()
        .map(|((a, r), n)| ((a.as_str(), r.as_str()), *n))
        .collect();
    for (i, account) in accounts.iter().enumerate() {
        let y = header_h + i as u32 * cell;
        let seen = account_seen(coverage, &account.account_id);
        let label = format!("{} {}", account.account_id, account.account_name);
        // Long names are cut to fit the label column; the full name is in
        // each cell's tooltip.
        let shown = cut_to(&label, 30);
        let _ = write!(
            svg,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\"{}>{}{}</text>",
            label_w - 6,
            y + 12,
            if seen.is_empty() {
                ""
            } else {
                " fill=\"#7d6608\""
            },
            esc(&shown),
            seen
        );
        for (j, rule) in rules.iter().enumerate() {
            let key = (account.account_id.as_str(), rule.id.as_str());
            let n = index.get(&key).copied().unwrap_or(0);
            let unknowns = unknown.get(&key).copied().unwrap_or(0);
            let (fill, shade, what) = if n > 0 {
                (
                    "#c0392b",
                    0.15 + 0.85 * (n as f64 / max).sqrt(),
                    format!("{n} failing"),
                )
            } else if unknowns > 0 {
                ("#7d6608", 0.35, format!("{unknowns} unknown (not judged)"))
            } else {
                ("#c0392b", 0.0, "0 failing".to_string())
            };
            let _ = write!(
                svg,
                "<rect x=\"{}\" y=\"{y}\" width=\"{}\" height=\"{}\" fill=\"{fill}\" fill-opacity=\"{shade:.2}\" stroke=\"#eee\"><title>{}: {what}</title></rect>",
                label_w + j as u32 * cell,
                cell - 1,
                cell - 1,
                esc(&format!("{}{seen} / {}", label, rule.id))
            );
        }
    }
    svg.push_str("</svg>");
    svg
}
