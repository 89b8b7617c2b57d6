//! `summary.md`: the audit in a page, for tickets and chat. Every string
//! that came from AWS (or a rule or waiver file) is made inert by [`md`].

use std::fmt::Write;

use super::ReportContext;
use crate::text::md;

/// `summary.md`: the audit in a page, for tickets and chat.
pub fn markdown(context: &ReportContext) -> String {
    let s = &context.summary;
    let c = &s.coverage;
    let mut out = String::new();
    let _ = writeln!(out, "# Golden AMI audit: {}\n", context.meta.collected_at);
    let _ = writeln!(
        out,
        "**{}** failing, **{}** unknown, **{}** waived, **{}** passing results from {} rules over {} accounts.\n",
        s.totals.fail,
        s.totals.unknown,
        s.totals.waived,
        s.totals.pass,
        context.meta.rules_evaluated,
        c.accounts_in_scope
    );
    if !c.complete {
        let _ = writeln!(
            out,
            "> Coverage incomplete: {} account-regions not scanned, {} scanned in part. Results there are `unknown`, not passing.\n",
            c.failed, c.partial
        );
    }
    let _ = writeln!(
        out,
        "| severity | fail | unknown | waived | pass |\n|---|---:|---:|---:|---:|"
    );
    for row in &s.by_severity {
        let k = &row.counts;
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            row.severity, k.fail, k.unknown, k.waived, k.pass
        );
    }
    let _ = writeln!(
        out,
        "\n## Most failing rules\n\n| rule | severity | failing |\n|---|---|---:|"
    );
    let mut rules: Vec<_> = s.rules.iter().filter(|r| r.counts.fail > 0).collect();
    rules.sort_by(|a, b| {
        (a.severity, std::cmp::Reverse(a.counts.fail), &a.rule_id).cmp(&(
            b.severity,
            std::cmp::Reverse(b.counts.fail),
            &b.rule_id,
        ))
    });
    for r in rules.iter().take(10) {
        let _ = writeln!(
            out,
            "| {}: {} | {} | {} |",
            md(&r.rule_id),
            md(&r.title),
            r.severity,
            r.counts.fail
        );
    }
    let _ = writeln!(
        out,
        "\n## Accounts, worst first\n\n| grade | score | account | name | failing | unknown |\n|---|---:|---|---|---:|---:|"
    );
    for a in s.accounts.iter().take(10) {
        let score = a.score.map_or("n/a".to_string(), |v| format!("{v:.1}"));
        let _ = writeln!(
            out,
            "| {} | {score} | {} | {} | {} | {} |",
            a.grade,
            md(&a.account_id),
            md(&a.account_name),
            a.counts.fail,
            a.counts.unknown
        );
    }
    if let Some(diff) = &context.diff {
        out.push_str(&diff_markdown(diff));
    }
    let expired: Vec<_> = context
        .waivers
        .iter()
        .filter(|w| w.state != crate::waivers::WaiverState::Active)
        .collect();
    if !expired.is_empty() {
        let _ = writeln!(out, "\n## Waivers needing attention\n");
        for w in expired {
            let _ = writeln!(
                out,
                "- {} {}: {} (approved by {}, expires {})",
                w.state.as_str(),
                md(&w.spec.rule),
                md(&w.spec.reason),
                md(&w.spec.approved_by),
                w.spec.expires
            );
        }
    }
    let _ = writeln!(
        out,
        "\n_amiaudit {}, policy pack `{}`, inventory `{}`._",
        context.meta.tool_version,
        &context.meta.policy_pack_sha256[..12.min(context.meta.policy_pack_sha256.len())],
        &context.meta.inventory_sha256[..12.min(context.meta.inventory_sha256.len())]
    );
    out
}

/// The drift section of summary.md.
fn diff_markdown(diff: &crate::diff::Diff) -> String {
    let c = &diff.counts;
    let mut out = format!(
        "\n## Since the last audit ({})\n\n| new | resolved | persisting | now waived | now unknown |\n|---:|---:|---:|---:|---:|\n| {} | {} | {} | {} | {} |\n",
        md(&diff.old_collected_at),
        c.new,
        c.resolved,
        c.persisting,
        c.now_waived,
        c.now_unknown
    );
    let new: Vec<&crate::diff::Change> = diff
        .changes
        .iter()
        .filter(|c| c.change == "new")
        .take(10)
        .collect();
    if !new.is_empty() {
        out.push_str("\nNew failures:\n\n");
        for c in new {
            let _ = writeln!(
                out,
                "- {} {} {} {}",
                md(&c.rule_id),
                md(&c.resource_id),
                md(&c.account_id),
                md(&c.region)
            );
        }
    }
    out
}
