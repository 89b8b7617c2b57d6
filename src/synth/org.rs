//! The synthetic organization's accounts: the fixed roles of the first
//! twelve, and generated workload accounts after them.

use super::Gen;
use crate::inventory::Value;

/// Fixed roles of the first accounts: (name, OU path, image families).
pub(super) const ROLES: [(&str, &str, &[&str]); 12] = [
    ("acme-management", "Root", &["mgmt-tools-golden"]),
    (
        "acme-security-audit",
        "Root/Security",
        &["sec-tools-golden"],
    ),
    (
        "acme-image-factory",
        "Root/Infrastructure",
        &[
            "al2023-base-golden",
            "ubuntu2404-base-golden",
            "win2022-base-golden",
            "rhel9-cis-golden",
            "al2023-eks-node-golden",
        ],
    ),
    (
        "acme-payments-prod",
        "Root/Workloads/Prod",
        &["payments-api-golden", "payments-worker-golden"],
    ),
    (
        "acme-payments-staging",
        "Root/Workloads/NonProd",
        &["payments-api-golden", "payments-worker-golden"],
    ),
    (
        "acme-web-prod",
        "Root/Workloads/Prod",
        &["web-frontend-golden", "web-api-golden"],
    ),
    (
        "acme-web-dev",
        "Root/Workloads/NonProd",
        &["web-frontend-golden", "web-api-golden"],
    ),
    (
        "acme-data-prod",
        "Root/Workloads/Prod",
        &["data-spark-golden", "data-airflow-golden"],
    ),
    (
        "acme-data-dev",
        "Root/Workloads/NonProd",
        &["data-spark-golden", "data-airflow-golden"],
    ),
    ("acme-sandbox-alice", "Root/Sandbox", &["sandbox-golden"]),
    ("acme-sandbox-bob", "Root/Sandbox", &["sandbox-golden"]),
    (
        "acme-legacy-erp",
        "Root/Workloads/Prod",
        &["erp-app-golden", "erp-db-golden"],
    ),
];
pub(super) const FACTORY: usize = 2;
pub(super) const DENIED: usize = 10;
pub(super) const LEGACY: usize = 11;
pub(super) const SANDBOX: usize = 9;

pub(super) fn role(index: usize) -> (String, &'static str, Vec<String>) {
    if let Some((name, ou, families)) = ROLES.get(index) {
        return (
            name.to_string(),
            ou,
            families.iter().map(|f| f.to_string()).collect(),
        );
    }
    let ou = if index.is_multiple_of(3) {
        "Root/Workloads/NonProd"
    } else {
        "Root/Workloads/Prod"
    };
    let app = [
        "orders", "search", "billing", "ml", "media", "iot", "crm", "hr",
    ][index % 8];
    (
        format!("acme-{app}-{index:04}"),
        ou,
        vec![format!("{app}-api-golden"), format!("{app}-worker-golden")],
    )
}

pub(super) fn region_not_opted_in(g: &mut Gen, account: usize, region: &str) {
    {
        let cells = vec![
            ("account_id", Value::from(g.account_ids[account].clone())),
            ("region", region.into()),
            ("opt_in_status", "not-opted-in".into()),
            ("scan_status", "not-opted-in".into()),
        ];
        g.push("regions", cells);
    }
    {
        let cells = vec![
        ("account_id", Value::from(g.account_ids[account].clone())),
        ("region", region.into()),
        ("service", "ec2".into()),
        ("operation", "DescribeImages".into()),
        ("error_code", "OptInRequired".into()),
        ("message", "You are not subscribed to this service. Please go to http://aws.amazon.com to subscribe.".into()),
    ];
        g.push("scan_errors", cells);
    }
}
