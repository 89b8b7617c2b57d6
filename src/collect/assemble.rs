//! Harvests become the inventory. A scanned value that breaks the schema
//! (outside a vocabulary, a timestamp out of range) is stored as null (not
//! known) with a scan error naming the resource, and a row that repeats
//! another's key is kept once: the scan's data is never lost to a panic.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use super::harvest::{Harvest, RegionScan};
use crate::discover::{AccountInfo, Discovery, RegionSelection};
use crate::error::Result;
use crate::inventory::schema::{AccountRow, Millis, RegionRow, ScanErrorRow, TableRow, Value};
use crate::inventory::{Inventory, Manifest, Scope, TABLES, TableBuilder};

pub struct Assembly<'a> {
    pub discovery: &'a Discovery,
    pub harvests: Vec<Harvest>,
    pub account_errors: Vec<ScanErrorRow>,
    pub regions: &'a RegionSelection,
    pub settings: BTreeMap<String, String>,
    pub started_at: DateTime<Utc>,
    pub ended_at: DateTime<Utc>,
    pub complete: bool,
}

struct Tables {
    builders: BTreeMap<&'static str, TableBuilder>,
    keys: BTreeMap<&'static str, BTreeMap<String, Vec<Value>>>,
    errors: Vec<ScanErrorRow>,
}

impl Tables {
    /// Adds a row; problems become scan errors about the row's resource.
    fn add(&mut self, table: &'static str, values: Vec<Value>) {
        let Some(builder) = self.builders.get_mut(table) else {
            return;
        };
        let def = builder.def();
        let cell = |name: &str| {
            def.column_index(name).and_then(|i| match values.get(i)? {
                Value::Str(s) => Some(s.clone()),
                _ => None,
            })
        };
        let (account, region, resource) = (
            cell("account_id").unwrap_or_default(),
            cell("region"),
            cell(def.resource_id),
        );
        let (service, operation) = def
            .operations
            .first()
            .and_then(|op| op.split_once(':'))
            .unwrap_or(("amiaudit", "Scan"));
        let mut problem = |code: &str, message: String| {
            self.errors.push(ScanErrorRow {
                account_id: account.clone(),
                region: region.clone(),
                service: service.to_string(),
                operation: operation.to_string(),
                resource_id: resource.clone(),
                error_code: Some(code.to_string()),
                message: Some(format!("`{table}`: {message}")),
            });
        };
        if !def.key.is_empty() {
            let key = def
                .key
                .iter()
                .filter_map(|k| def.column_index(k))
                .map(|i| format!("{:?}", values.get(i)))
                .collect::<Vec<_>>()
                .join("\u{1f}");
            let kept = self.keys.entry(table).or_default();
            if let Some(first) = kept.get(&key) {
                // The same key described twice (a key shared by accounts, a
                // page repeated) is kept once; a conflicting one is reported.
                if *first != values {
                    problem(
                        "DuplicateRow",
                        "described twice with different values; the first was kept".to_string(),
                    );
                }
                return;
            }
            kept.insert(key, values.clone());
        }
        match builder.push_lenient(values) {
            Ok(problems) => {
                for p in problems {
                    problem("UnexpectedValue", format!("{p}; stored as not known"));
                }
            }
            Err(p) => problem("UnexpectedValue", format!("{p}; row not kept")),
        }
    }
}

pub fn inventory(assembly: Assembly) -> Result<Inventory> {
    let mut tables = Tables {
        builders: TABLES
            .iter()
            .map(|t| (t.name, TableBuilder::new(t)))
            .collect(),
        keys: BTreeMap::new(),
        errors: Vec::new(),
    };
    let discovery = assembly.discovery;
    // Members outside the scope too: sharing is judged against the whole
    // organization. The scope is the manifest's account list.
    let mut listed: BTreeSet<&str> = BTreeSet::new();
    for account in discovery.accounts.iter().chain(&discovery.members) {
        if listed.insert(&account.account_id) {
            tables.add(AccountRow::TABLE, account_row(account).into_values());
        }
    }
    let mut harvests = assembly.harvests;
    harvests.sort_by(|a, b| (&a.account_id, &a.region).cmp(&(&b.account_id, &b.region)));
    let mut errors: Vec<ScanErrorRow> = discovery.errors.clone();
    errors.extend(assembly.account_errors);
    let mut scanned_regions: BTreeSet<String> = BTreeSet::new();
    for harvest in harvests {
        scanned_regions.insert(harvest.region.clone());
        let status = match harvest.scan {
            RegionScan::NotOptedIn => "not-opted-in",
            other => other.as_str(),
        };
        let settings = harvest.settings;
        let row = RegionRow {
            account_id: harvest.account_id.clone(),
            region: harvest.region.clone(),
            opt_in_status: harvest.opt_in_status.clone(),
            scan_status: status.to_string(),
            ebs_encryption_by_default: settings.ebs_encryption_by_default,
            ebs_default_kms_key_id: settings.ebs_default_kms_key_id,
            image_block_public_access: settings.image_block_public_access,
            snapshot_block_public_access: settings.snapshot_block_public_access,
            allowed_images_state: settings.allowed_images_state,
            inspector_ec2_status: settings.inspector_ec2_status,
            imds_default_http_tokens: settings.imds_default_http_tokens,
        };
        tables.add(RegionRow::TABLE, row.into_values());
        for (table, values) in harvest.rows {
            tables.add(table, values);
        }
        errors.extend(harvest.errors);
    }
    errors.append(&mut tables.errors);
    errors.sort_by(|a, b| error_key(a).cmp(&error_key(b)));
    errors.dedup();
    let mut builders = tables.builders;
    if let Some(builder) = builders.get_mut(ScanErrorRow::TABLE) {
        for e in errors {
            // Every field is text without a vocabulary: cannot be refused.
            let _ = builder.push_lenient(e.into_values());
        }
    }
    let frames = builders
        .into_iter()
        .map(|(name, b)| Ok((name, b.finish()?)))
        .collect::<Result<BTreeMap<_, _>>>()?;
    let mut manifest = Manifest::new(
        assembly.ended_at,
        Scope {
            source: discovery.source.clone(),
            organization_id: discovery.organization_id.clone(),
            management_account_id: discovery.management_account_id.clone(),
            caller_arn: Some(discovery.caller_arn.clone()),
            accounts: discovery
                .accounts
                .iter()
                .map(|a| a.account_id.clone())
                .collect(),
            regions: match assembly.regions {
                RegionSelection::List(list) => list.clone(),
                RegionSelection::All => scanned_regions.into_iter().collect(),
            },
        },
    );
    manifest.scan_started_at = Some(assembly.started_at);
    manifest.scan_ended_at = Some(assembly.ended_at);
    manifest.complete = assembly.complete;
    manifest.settings = assembly.settings;
    Inventory::new(manifest, frames)
}

fn error_key(e: &ScanErrorRow) -> impl Ord + '_ {
    (
        &e.account_id,
        &e.region,
        &e.service,
        &e.operation,
        &e.resource_id,
        &e.error_code,
        &e.message,
    )
}

fn account_row(account: &AccountInfo) -> AccountRow {
    AccountRow {
        account_id: account.account_id.clone(),
        account_name: account.name.clone(),
        email: account.email.clone(),
        status: account.status.clone(),
        ou_id: account.ou_id.clone(),
        ou_path: account.ou_path.clone(),
        joined_at: account.joined_at_ms.map(Millis),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discover::RegionInfo;
    use crate::inventory::schema::{ImageRow, KmsKeyRow};

    fn region() -> RegionInfo {
        RegionInfo {
            region: "eu-west-1".into(),
            opt_in_status: None,
        }
    }

    #[test]
    fn rows_that_break_the_schema_become_scan_errors_not_panics() {
        let discovery = Discovery {
            caller_account_id: "111111111111".into(),
            accounts: vec![AccountInfo {
                account_id: "111111111111".into(),
                status: Some("Active?".into()),
                ..Default::default()
            }],
            ..Default::default()
        };
        let mut harvest = Harvest::new("111111111111", &region());
        harvest.push(ImageRow {
            account_id: "111111111111".into(),
            region: "eu-west-1".into(),
            image_id: "ami-1".into(),
            state: Some("exploded".into()),
            creation_date: Some(Millis(-5)),
            ..Default::default()
        });
        let key = KmsKeyRow {
            account_id: "111111111111".into(),
            region: "eu-west-1".into(),
            key_arn: "arn:k".into(),
            key_manager: Some("CUSTOMER".into()),
            alias: None,
        };
        harvest.push(key.clone());
        harvest.push(key.clone());
        harvest.push(KmsKeyRow {
            key_manager: Some("AWS".into()),
            ..key
        });
        harvest.finish();
        let now = Utc::now();
        let inventory = inventory(Assembly {
            discovery: &discovery,
            harvests: vec![harvest],
            account_errors: Vec::new(),
            regions: &RegionSelection::All,
            settings: BTreeMap::new(),
            started_at: now,
            ended_at: now,
            complete: true,
        })
        .unwrap_or_else(|e| panic!("{e}"));
        let errors = inventory
            .table("scan_errors")
            .unwrap_or_else(|e| panic!("{e}"));
        let codes =
            crate::inventory::str_column(errors, "error_code").unwrap_or_else(|e| panic!("{e}"));
        // account status, image state, image creation date, conflicting key
        assert_eq!(codes.len(), 4, "{errors}");
        assert!(codes.contains(&Some("DuplicateRow")));
        let images = inventory.table("images").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(images.height(), 1);
        assert_eq!(images.column("state").map(|c| c.null_count()).ok(), Some(1));
        let keys = inventory
            .table("kms_keys")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(keys.height(), 1);
    }
}
