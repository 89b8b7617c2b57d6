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
    if let Some(why) = &c.accounts_not_listed {
        let _ = writeln!(
            out,
            "> The organization's accounts could not be listed ({}): only {} account(s) were audited, the rest of the organization not at all.\n",
            md(why),
            c.accounts_in_scope
        );
    }
    if !context.rules_not_run.is_empty() {
        let _ = writeln!(
            out,
            "> **{} rule(s) could not run**; none of their results is known:\n>",
            context.rules_not_run.len()
        );
        for rule in &context.rules_not_run {
            let _ = writeln!(out, "> - {}: {}", md(&rule.id), md(&rule.error));
        }
        out.push('\n');
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
    out.push_str(&rules_and_accounts_markdown(s));
    out.push_str(&pipelines_markdown(&context.pipelines));
    out.push_str(&adoption_markdown(&context.adoption));
    out.push_str(&retirement_markdown(&context.retirement));
    if let Some(diff) = &context.diff {
        out.push_str(&diff_markdown(diff));
    }
    out.push_str(&waivers_markdown(&context.waivers));
    if let Some(storage) = &context.meta.storage {
        let _ = writeln!(out, "\nEvidence {}.", md(&storage.describe()));
    }
    let _ = writeln!(
        out,
        "\n_amiaudit {}, policy pack `{}`, inventory `{}`._",
        context.meta.tool_version,
        context
            .meta
            .policy_pack_sha256
            .chars()
            .take(12)
            .collect::<String>(),
        context
            .meta
            .inventory_sha256
            .chars()
            .take(12)
            .collect::<String>()
    );
    out
}

/// The most failing rules and the worst accounts, ten of each.
fn rules_and_accounts_markdown(s: &crate::results::Summary) -> String {
    let mut out = String::new();
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
    out
}

/// Waivers expired or about to, with who approved them.
fn waivers_markdown(waivers: &[crate::waivers::WaiverUse]) -> String {
    let mut out = String::new();
    let expired: Vec<_> = waivers
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
    out
}

/// Pipelines summary.md lists (the worst first).
const PIPELINES_LISTED: usize = 20;

/// The image factory: one line per pipeline, and where pipelines were not read.
fn pipelines_markdown(view: &super::pipelines::PipelinesView) -> String {
    let mut out = String::new();
    if view.pipelines.is_empty() && view.unread.is_empty() {
        return out;
    }
    let _ = writeln!(out, "\n## Pipelines\n");
    if !view.pipelines.is_empty() {
        let _ = writeln!(
            out,
            "| health | pipeline | account | region | schedule | newest image | age (days) | instances | failing rules |\n|---|---|---|---|---|---|---:|---:|---|"
        );
        // One page: the worst first, at most PIPELINES_LISTED of them.
        let mut worst: Vec<_> = view.pipelines.iter().collect();
        worst.sort_by_key(|p| p.health);
        for p in worst.iter().take(PIPELINES_LISTED) {
            let newest = match (&p.newest_version, p.builds_read) {
                (_, false) => "builds not read".to_string(),
                (Some(v), true) => md(v),
                (None, true) => "none available".to_string(),
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {newest} | {} | {} | {} |",
                p.health,
                md(&p.name),
                md(&p.account_id),
                md(&p.region),
                md(&p.schedule),
                p.newest_age_days.map(|d| d.to_string()).unwrap_or_default(),
                p.instances,
                p.failing_rules
                    .iter()
                    .map(|r| md(r))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    if view.pipelines.len() > PIPELINES_LISTED {
        let _ = writeln!(
            out,
            "\nand {} more pipelines; all are in report.html.",
            view.pipelines.len() - PIPELINES_LISTED
        );
    }
    if !view.unread.is_empty() {
        let _ = writeln!(
            out,
            "\n> Pipelines were not read in {} account-regions: any pipeline there is missing above.",
            view.unread.len()
        );
    }
    out
}

/// AMIs summary.md lists in each table of the retirement plan.
const RETIREMENT_LISTED: usize = 20;

/// The retirement plan: what is safe to deregister, and what deprecated
/// AMIs are still in use (never deregister those).
fn retirement_markdown(r: &crate::results::retirement::Retirement) -> String {
    let mut out = String::new();
    if r.safe.is_empty() && r.still_used.is_empty() && r.not_known == 0 {
        return out;
    }
    let _ = writeln!(
        out,
        "\n## Retirement plan\n\n{} AMIs safe to retire (nothing launches or references them, idle, superseded; AMI-UNUSED), {} deprecated AMIs still in use (keep them), {} AMIs whose use is not known (not safe until a later audit reads it). Deprecate first; deregister with its snapshots once a later audit still finds it unused (the commands are in report.html and findings.json, and in retirement.csv when CSV is written).",
        r.safe.len(),
        r.still_used.len(),
        r.not_known
    );
    if !r.safe.is_empty() {
        let _ = writeln!(
            out,
            "\nSafe to retire:\n\n| account | region | AMI | name | deprecated | snapshots | evidence |\n|---|---|---|---|---|---|---|"
        );
        for s in r.safe.iter().take(RETIREMENT_LISTED) {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} |",
                md(&s.account_id),
                md(&s.region),
                md(&s.image_id),
                md(s.name.as_deref().unwrap_or_default()),
                if s.deprecated { "yes" } else { "no" },
                md(&s.snapshots.join(" ")),
                md(&s.evidence)
            );
        }
        if r.safe.len() > RETIREMENT_LISTED {
            let _ = writeln!(out, "\nand {} more.", r.safe.len() - RETIREMENT_LISTED);
        }
    }
    if !r.still_used.is_empty() {
        let _ = writeln!(
            out,
            "\nDeprecated, still in use (do not deregister):\n\n| account | region | AMI | name | used by |\n|---|---|---|---|---|"
        );
        for u in r.still_used.iter().take(RETIREMENT_LISTED) {
            let first: Vec<String> = u
                .consumers
                .iter()
                .take(3)
                .map(|c| format!("{} {} ({})", c.kind, c.id, c.account_id))
                .collect();
            let more = u.consumer_count.saturating_sub(first.len());
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {}{} |",
                md(&u.account_id),
                md(&u.region),
                md(&u.image_id),
                md(u.name.as_deref().unwrap_or_default()),
                md(&first.join(", ")),
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                }
            );
        }
        if r.still_used.len() > RETIREMENT_LISTED {
            let _ = writeln!(
                out,
                "\nand {} more.",
                r.still_used.len() - RETIREMENT_LISTED
            );
        }
    }
    out
}

/// Accounts summary.md lists in its adoption table (the worst first).
const ADOPTION_ACCOUNTS_LISTED: usize = 20;

/// Fleet adoption: the organization, the accounts worst first, the worst offenders.
fn adoption_markdown(a: &crate::results::adoption::Adoption) -> String {
    let mut out = String::new();
    let o = &a.organization;
    if o.instances.total + o.groups.total == 0 && a.unread.is_empty() {
        return out;
    }
    let _ = writeln!(
        out,
        "\n## Adoption of the newest golden versions\n\nOn the newest version of their family: {} running instances, {} Auto Scaling groups.\n",
        o.instances.share_text(),
        o.groups.share_text()
    );
    let _ = writeln!(
        out,
        "| account | name | instances on newest | behind | AMI missing | AMI deprecated | not golden | unknown | groups on newest | behind | AMI missing | AMI deprecated | not golden | unknown |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for row in std::iter::once(o).chain(a.accounts.iter().take(ADOPTION_ACCOUNTS_LISTED)) {
        let (i, g) = (&row.instances, &row.groups);
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            if row.account_id.is_empty() {
                "all".to_string()
            } else {
                md(&row.account_id)
            },
            md(&row.account_name),
            i.share_text(),
            i.behind,
            i.missing,
            i.deprecated,
            i.not_golden,
            i.unknown,
            g.share_text(),
            g.behind,
            g.missing,
            g.deprecated,
            g.not_golden,
            g.unknown
        );
    }
    if a.accounts.len() > ADOPTION_ACCOUNTS_LISTED {
        let _ = writeln!(
            out,
            "\nand {} more accounts; all are in report.html and findings.json.",
            a.accounts.len() - ADOPTION_ACCOUNTS_LISTED
        );
    }
    if !a.worst.is_empty() {
        let _ = writeln!(
            out,
            "\nFurthest behind:\n\n| kind | resource | account | region | AMI | family | versions behind | days behind | newest |\n|---|---|---|---|---|---|---:|---:|---|"
        );
        for w in a.worst.iter().take(10) {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                w.kind,
                md(&w.resource_id),
                md(&w.account_id),
                md(&w.region),
                md(&w.image_id),
                md(&w.family),
                match (w.versions_behind, w.deprecated) {
                    (None, _) => "AMI missing".to_string(),
                    (Some(n), true) => format!("{n} (AMI deprecated)"),
                    (Some(n), false) => n.to_string(),
                },
                w.days_behind.map(|d| d.to_string()).unwrap_or_default(),
                md(&w.newest_image_id)
            );
        }
    }
    if !a.unread.is_empty() {
        let _ = writeln!(
            out,
            "\n> Instances or Auto Scaling groups were not read in {} account-regions: whatever runs there is not counted above.",
            a.unread.len()
        );
    }
    out
}

/// The drift section of summary.md.
fn diff_markdown(diff: &crate::diff::Diff) -> String {
    let c = &diff.counts;
    let mut out = format!(
        "\n## Since the last audit ({})\n\n| new | resolved | persisting | now waived | now unknown | not seen again |\n|---:|---:|---:|---:|---:|---:|\n| {} | {} | {} | {} | {} | {} |\n",
        md(&diff.old_collected_at),
        c.new,
        c.resolved,
        c.persisting,
        c.now_waived,
        c.now_unknown,
        c.not_seen
    );
    let new: Vec<&crate::diff::Change> = diff
        .changes
        .iter()
        .filter(|c| c.change == crate::diff::ChangeKind::New)
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
