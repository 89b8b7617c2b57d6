//! Where a rule cannot see: the same for every rule, from the rule's
//! evidence and the inventory's coverage. What that does to the rule's
//! results is `judge.rs`.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rustc_hash::FxHashMap;

use crate::error::polars_message;
use crate::inventory::{Coverage as InventoryCoverage, Inventory, ScanStatus};
use crate::policy::{Evidence, Rule};

/// A resource's row in an inventory table: account, region, resource id.
pub(super) type RowKey<'a> = (&'a str, &'a str, &'a str);

/// Where a rule cannot see: account-regions (and single resources) whose data is missing.
#[derive(Default)]
pub(super) struct Gaps<'a> {
    /// (account_id, region) -> reason
    pub(super) regions: BTreeMap<(String, String), String>,
    /// (account_id, region, resource_id) -> reason
    pub(super) resources: BTreeMap<(String, String, String), String>,
    /// Facts of a resource's own row that are not known: resource type ->
    /// row -> index into `fact_reasons`. Only a `pass` needs them all: a
    /// `fail` stands on the facts that prove it. Keys borrow the inventory:
    /// a million unknown facts cost no allocation each.
    pub(super) unknown_facts: HashMap<&'a str, FxHashMap<RowKey<'a>, usize>>,
    pub(super) fact_reasons: Vec<String>,
}

/// The coverage facts every rule's gaps are made from.
pub(super) struct Coverage<'a> {
    inventory: &'a Inventory,
    coverage: &'a InventoryCoverage,
    pub(super) skipped: BTreeSet<(String, String)>,
    unseen: BTreeMap<(String, String), String>,
}

impl<'a> Coverage<'a> {
    pub(super) fn read(inventory: &'a Inventory) -> Coverage<'a> {
        let coverage = inventory.coverage();
        Coverage {
            inventory,
            coverage,
            skipped: coverage.skipped().cloned().collect(),
            unseen: coverage
                .unseen()
                .map(|(k, why)| (k.clone(), why.to_string()))
                .collect(),
        }
    }

    pub(super) fn gaps_for(&self, rule: &Rule) -> Result<Gaps<'a>, String> {
        let mut gaps = Gaps {
            regions: self.unseen.clone(),
            ..Gaps::default()
        };
        // Calls this inventory never made (it predates them): blind everywhere.
        let never: Vec<&str> = rule
            .calls()
            .filter(|op| {
                self.coverage
                    .not_collected
                    .contains(&op.to_ascii_lowercase())
            })
            .collect();
        if let Some(op) = never.first() {
            let why = format!(
                "{op} was not collected by this inventory (schema version {})",
                self.coverage.written_with
            );
            for (key, (status, _)) in &self.coverage.regions {
                if *status != ScanStatus::NotOptedIn {
                    gaps.regions
                        .entry(key.clone())
                        .or_insert_with(|| why.clone());
                }
            }
        }
        self.add_failed_calls(rule, &mut gaps);
        let settings: Vec<String> = self
            .inventory
            .manifest()
            .settings
            .iter()
            .map(|(k, v)| format!("{k} = {v}"))
            .collect();
        for fact in &rule.evidence {
            let Evidence::Column { table, column } = fact else {
                continue;
            };
            let inventory: &'a Inventory = self.inventory;
            let df = inventory.table(table.name).map_err(|e| e.to_string())?;
            let nulls = df.column(column).map_err(|e| polars_message(&e))?.is_null();
            let mut why = format!("`{fact}` is not known for this {}", table.resource_type);
            if !settings.is_empty() {
                why.push_str(&format!(" (scan settings: {})", settings.join(", ")));
            }
            let reason = gaps.fact_reasons.len();
            gaps.fact_reasons.push(why);
            let missing = gaps.unknown_facts.entry(table.resource_type).or_default();
            // Most columns are known in every row: nothing to look through.
            if !nulls.any() {
                continue;
            }
            let rows = crate::inventory::text_rows(df, ["account_id", "region", table.resource_id])
                .map_err(|e| e.to_string())?;
            for (null, [account, region, id]) in nulls.iter().zip(rows) {
                if null == Some(true) {
                    missing
                        .entry((
                            account.unwrap_or_default(),
                            region.unwrap_or_default(),
                            id.unwrap_or_default(),
                        ))
                        .or_insert(reason);
                }
            }
        }
        Ok(gaps)
    }

    /// The account-regions and resources where a call the rule needs
    /// failed (a region not opted in is out of scope, not a gap).
    fn add_failed_calls(&self, rule: &Rule, gaps: &mut Gaps<'a>) {
        let needs = |op: &str| rule.calls().any(|r| r.eq_ignore_ascii_case(op));
        for e in self
            .coverage
            .failed_calls
            .iter()
            .filter(|e| needs(&e.operation))
        {
            let reason = format!("{} failed ({})", e.operation, e.error_code);
            let regions: Vec<String> = match &e.region {
                Some(r) => vec![r.clone()],
                None => self
                    .coverage
                    .regions_of(&e.account_id)
                    .map(str::to_string)
                    .collect(),
            };
            for region in regions {
                // A region that is not opted in is out of scope, not a gap.
                if self
                    .skipped
                    .contains(&(e.account_id.clone(), region.clone()))
                {
                    continue;
                }
                match &e.resource_id {
                    Some(resource) => {
                        gaps.resources
                            .entry((e.account_id.clone(), region, resource.clone()))
                            .or_insert_with(|| reason.clone());
                    }
                    None => {
                        gaps.regions
                            .entry((e.account_id.clone(), region))
                            .or_insert_with(|| reason.clone());
                    }
                }
            }
        }
    }
}
