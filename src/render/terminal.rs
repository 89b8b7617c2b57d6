//! The short summary printed after an audit.
//!
//! Every AWS-sourced string passes [`terminal_field`]: no escape sequence a
//! hostile account name carries (window titles, screen clears, colours,
//! hyperlinks) and no bidi override reaches the terminal.

use std::fmt::Write;

use super::ReportContext;
use crate::text::terminal_field;

pub fn terminal_summary(context: &ReportContext, worst: usize) -> String {
    let meta = &context.meta;
    let s = &context.summary;
    let c = &s.coverage;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "amiaudit {}: {} rules over the inventory collected {}",
        meta.tool_version, meta.rules_evaluated, meta.collected_at
    );
    let _ = writeln!(
        out,
        "coverage: {} accounts, {} account-regions in scope: {} scanned, {} partial, {} not scanned; {} not opted in; {} scan errors{}",
        c.accounts_in_scope,
        c.account_regions_in_scope,
        c.scanned_ok,
        c.partial,
        c.failed,
        c.not_opted_in,
        c.scan_errors,
        if c.complete {
            ""
        } else {
            " (coverage incomplete)"
        }
    );
    if let Some(why) = &c.accounts_not_listed {
        let _ = writeln!(
            out,
            "{}",
            crate::text::terminal_line(&format!(
                "the organization's accounts could not be listed ({why}): only the {} account(s) above were audited",
                c.accounts_in_scope
            ))
        );
    }
    out.push_str(&severity_table(s));
    if !s.accounts.is_empty() {
        let _ = writeln!(out, "\nworst accounts (hygiene score 0-100):");
        for a in s.accounts.iter().take(worst) {
            let _ = writeln!(
                out,
                "  {} {:>5}  {}  {:<28} {} failing, {} unknown",
                a.grade,
                a.score.map_or("n/a".to_string(), |s| format!("{s:.1}")),
                terminal_field(&a.account_id),
                terminal_field(&a.account_name),
                a.counts.fail,
                a.counts.unknown
            );
        }
    }
    out.push_str(&adoption_line(&context.adoption));
    for w in &context.waivers {
        match w.state {
            crate::waivers::WaiverState::Expired => {
                let _ = writeln!(
                    out,
                    "waiver expired {}: {} ({}), no longer applies",
                    w.spec.expires,
                    terminal_field(&w.spec.rule),
                    terminal_field(&w.spec.reason)
                );
            }
            crate::waivers::WaiverState::Unused => {
                let _ = writeln!(
                    out,
                    "waiver unused: {} ({}) matched no failing result",
                    terminal_field(&w.spec.rule),
                    terminal_field(&w.spec.reason)
                );
            }
            _ => {}
        }
    }
    for e in &context.rule_errors {
        let _ = writeln!(out, "rule error: {}", terminal_field(e));
    }
    out
}

/// Results by severity, and the totals.
fn severity_table(s: &crate::results::Summary) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n{:<10} {:>8} {:>8} {:>8} {:>8}",
        "severity", "fail", "unknown", "waived", "pass"
    );
    for row in &s.by_severity {
        let k = &row.counts;
        let _ = writeln!(
            out,
            "{:<10} {:>8} {:>8} {:>8} {:>8}",
            row.severity.as_str(),
            k.fail,
            k.unknown,
            k.waived,
            k.pass
        );
    }
    let t = &s.totals;
    let _ = writeln!(
        out,
        "{:<10} {:>8} {:>8} {:>8} {:>8}",
        "total", t.fail, t.unknown, t.waived, t.pass
    );
    out
}

/// The organization's share on the newest golden versions (nothing when
/// there is no fleet).
fn adoption_line(view: &crate::results::adoption::Adoption) -> String {
    let mut out = String::new();
    let adoption = &view.organization;
    if adoption.instances.total + adoption.groups.total > 0 {
        let _ = writeln!(
            out,
            "\nadoption: on the newest golden version: {} running instances ({} behind, {} AMI missing, {} AMI deprecated, {} unknown), {} Auto Scaling groups ({} behind, {} AMI missing, {} AMI deprecated, {} unknown){}",
            adoption.instances.share_text(),
            adoption.instances.behind,
            adoption.instances.missing,
            adoption.instances.deprecated,
            adoption.instances.unknown,
            adoption.groups.share_text(),
            adoption.groups.behind,
            adoption.groups.missing,
            adoption.groups.deprecated,
            adoption.groups.unknown,
            if view.unread.is_empty() {
                String::new()
            } else {
                format!("; not read in {} account-regions", view.unread.len())
            }
        );
    }
    out
}
