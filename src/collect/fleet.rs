//! Who will launch which AMI next: Auto Scaling groups (their launch
//! templates, mixed instances policies and overrides, or launch
//! configurations, each resolved to a version and an AMI) and the SSM
//! parameters stacks read the AMI id from. Read-only: Describe*/Get* only,
//! never with decryption; SecureStrings are filtered out by SSM itself
//! (GetParametersByPath) or never asked for (GetParameters).

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_autoscaling::types::{
    AutoScalingGroup, LaunchConfiguration, LaunchTemplateSpecification,
};
use aws_sdk_ec2::types::LaunchTemplateVersion;
use aws_sdk_ssm::types::{Parameter, ParameterMetadata, ParameterStringFilter};

use super::calls::{
    CallResult, all_pages, each_bounded, enum_text, invalid_request, sdk, smithy_time, text,
};
use super::ec2_usage::{Visibility, template_image};
use super::harvest::Harvest;
use crate::inventory::schema::{AsgLaunchSourceRow, AutoScalingGroupRow, SsmParameterRow};

/// The data type of parameters that hold AMI ids (AWS checks the id on write).
const IMAGE_DATA_TYPE: &str = "aws:ec2:image";

/// Everything read, before it becomes rows.
pub struct Fetched {
    groups: CallResult<Vec<AutoScalingGroup>>,
    /// None where no group uses a launch configuration.
    launch_configurations: Option<CallResult<Vec<LaunchConfiguration>>>,
    /// Template (id or name) -> the numbered versions groups name, as read.
    template_versions: TemplateVersions,
    /// Parameters listed for their data type, then their values.
    typed: CallResult<Vec<ParameterMetadata>>,
    typed_values: Vec<(String, CallResult<Vec<Parameter>>)>,
    /// Configured path -> the parameters under it.
    by_path: Vec<(String, CallResult<Vec<Parameter>>)>,
}

/// One template a group names, as the group names it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct TemplateRef {
    source: &'static str,
    id: Option<String>,
    name: Option<String>,
    version: Option<String>,
}

impl TemplateRef {
    fn of(source: &'static str, spec: &LaunchTemplateSpecification) -> Option<TemplateRef> {
        let id = text(spec.launch_template_id());
        let name = text(spec.launch_template_name());
        (id.is_some() || name.is_some()).then(|| TemplateRef {
            source,
            id,
            name,
            version: text(spec.version()),
        })
    }

    /// The id, else the name: how a DescribeLaunchTemplateVersions asks for it.
    fn handle(&self) -> &str {
        self.id
            .as_deref()
            .or(self.name.as_deref())
            .unwrap_or_default()
    }

    /// `<handle>:<version>`, the version being $Default when none is named
    /// (AWS launches $Default then).
    fn reference(&self) -> String {
        format!("{}:{}", self.handle(), self.spec())
    }

    fn spec(&self) -> &str {
        self.version.as_deref().unwrap_or("$Default")
    }

    fn number(&self) -> Option<i64> {
        self.version.as_deref().and_then(|v| v.parse().ok())
    }
}

fn template_refs(group: &AutoScalingGroup) -> Vec<TemplateRef> {
    let mut refs = Vec::new();
    if let Some(spec) = group.launch_template() {
        refs.extend(TemplateRef::of("launch_template", spec));
    }
    if let Some(policy) = group
        .mixed_instances_policy()
        .and_then(|p| p.launch_template())
    {
        if let Some(spec) = policy.launch_template_specification() {
            refs.extend(TemplateRef::of("mixed_instances_policy", spec));
        }
        for o in policy.overrides() {
            if let Some(spec) = o.launch_template_specification() {
                refs.extend(TemplateRef::of("override", spec));
            }
        }
    }
    refs.sort();
    // One row per (source, reference): an override naming the template by
    // id and another by id and name, or one with no version and one with
    // $Default, launch the same thing.
    refs.dedup_by(|a, b| a.source == b.source && a.reference() == b.reference());
    refs
}

pub async fn fetch(
    autoscaling: &aws_sdk_autoscaling::Client,
    ec2: &aws_sdk_ec2::Client,
    ssm: &aws_sdk_ssm::Client,
    parameter_paths: &[String],
    limit: usize,
) -> Fetched {
    let ((groups, launch_configurations, template_versions), (typed, typed_values), by_path) = tokio::join!(
        groups_and_sources(autoscaling, ec2, limit),
        typed_parameters(ssm, limit),
        parameters_by_path(ssm, parameter_paths, limit),
    );
    Fetched {
        groups,
        launch_configurations,
        template_versions,
        typed,
        typed_values,
        by_path,
    }
}

type TemplateVersions = Vec<(String, CallResult<Vec<LaunchTemplateVersion>>)>;

/// The Auto Scaling groups, the launch configurations they name and the
/// numbered template versions they name.
async fn groups_and_sources(
    autoscaling: &aws_sdk_autoscaling::Client,
    ec2: &aws_sdk_ec2::Client,
    limit: usize,
) -> (
    CallResult<Vec<AutoScalingGroup>>,
    Option<CallResult<Vec<LaunchConfiguration>>>,
    TemplateVersions,
) {
    let pages = autoscaling
        .describe_auto_scaling_groups()
        .max_records(100)
        .into_paginator()
        .send();
    let groups: CallResult<Vec<AutoScalingGroup>> =
        all_pages(pages, |p| p.auto_scaling_groups.unwrap_or_default()).await;
    let listed = groups.as_deref().unwrap_or_default();
    let configurations: BTreeSet<String> = listed
        .iter()
        .filter_map(|g| g.launch_configuration_name().map(str::to_string))
        .collect();
    // Numbered versions are read here; $Default and $Latest come with
    // the region's own template listing.
    let mut numbered: BTreeMap<String, BTreeSet<i64>> = BTreeMap::new();
    // Handles that are template ids (the rest are names, asked as names).
    let mut by_id: BTreeSet<String> = BTreeSet::new();
    for r in listed.iter().flat_map(template_refs) {
        if let Some(n) = r.number() {
            if r.id.is_some() {
                by_id.insert(r.handle().to_string());
            }
            numbered
                .entry(r.handle().to_string())
                .or_default()
                .insert(n);
        }
    }
    let (launch_configurations, template_versions) = tokio::join!(
        launch_configurations(autoscaling, configurations),
        numbered_versions(ec2, &numbered, &by_id, limit),
    );
    (groups, launch_configurations, template_versions)
}

/// The named launch configurations, 50 names a call; None when none is named.
async fn launch_configurations(
    autoscaling: &aws_sdk_autoscaling::Client,
    configurations: BTreeSet<String>,
) -> Option<CallResult<Vec<LaunchConfiguration>>> {
    if configurations.is_empty() {
        return None;
    }
    let names: Vec<String> = configurations.into_iter().collect();
    let mut out = Vec::new();
    for chunk in names.chunks(50) {
        let pages = autoscaling
            .describe_launch_configurations()
            .set_launch_configuration_names(Some(chunk.to_vec()))
            .into_paginator()
            .send();
        match all_pages(pages, |p| p.launch_configurations.unwrap_or_default()).await {
            Ok(list) => out.extend(list),
            Err(e) => return Some(Err(e)),
        }
    }
    Some(Ok(out))
}

/// Each template's numbered versions the groups name, by id or by name as
/// the group names it.
async fn numbered_versions(
    ec2: &aws_sdk_ec2::Client,
    numbered: &BTreeMap<String, BTreeSet<i64>>,
    by_id: &BTreeSet<String>,
    limit: usize,
) -> TemplateVersions {
    each_bounded(numbered.keys().cloned(), limit, |handle| {
        let versions: Vec<String> = numbered
            .get(&handle)
            .into_iter()
            .flatten()
            .map(|n| n.to_string())
            .collect();
        let is_id = by_id.contains(&handle);
        async move {
            let request = ec2
                .describe_launch_template_versions()
                .set_versions(Some(versions));
            let request = if is_id {
                request.launch_template_id(handle)
            } else {
                request.launch_template_name(handle)
            };
            let pages = request.into_paginator().send();
            all_pages(pages, |p| p.launch_template_versions.unwrap_or_default()).await
        }
    })
    .await
}

/// Parameters of data type `aws:ec2:image`, then their values (10 names a
/// call); the values of SecureStrings are never asked for.
async fn typed_parameters(
    ssm: &aws_sdk_ssm::Client,
    limit: usize,
) -> (
    CallResult<Vec<ParameterMetadata>>,
    Vec<(String, CallResult<Vec<Parameter>>)>,
) {
    let filter = ParameterStringFilter::builder()
        .key("DataType")
        .option("Equals")
        .values(IMAGE_DATA_TYPE)
        .build()
        .map_err(invalid_request);
    let listed: CallResult<Vec<ParameterMetadata>> = match filter {
        Ok(filter) => {
            let pages = ssm
                .describe_parameters()
                .parameter_filters(filter)
                .max_results(50)
                .into_paginator()
                .send();
            all_pages(pages, |p| p.parameters.unwrap_or_default()).await
        }
        Err(e) => Err(e),
    };
    let names: Vec<String> = listed
        .as_deref()
        .unwrap_or_default()
        .iter()
        .filter(|m| m.r#type().is_none_or(|t| t.as_str() != "SecureString"))
        .filter_map(|m| text(m.name()))
        .collect();
    let chunks: Vec<String> = names.chunks(10).map(|c| c.join("\n")).collect();
    let values = each_bounded(chunks, limit, |joined| async move {
        let names: Vec<String> = joined.split('\n').map(str::to_string).collect();
        let out = ssm
            .get_parameters()
            .set_names(Some(names))
            .with_decryption(false)
            .send()
            .await
            .map_err(sdk)?;
        Ok(out.parameters.unwrap_or_default())
    })
    .await;
    (listed, values)
}

/// The plain (String, StringList) parameters under each configured path.
async fn parameters_by_path(
    ssm: &aws_sdk_ssm::Client,
    parameter_paths: &[String],
    limit: usize,
) -> Vec<(String, CallResult<Vec<Parameter>>)> {
    each_bounded(parameter_paths.iter().cloned(), limit, |path| async move {
        let root = match path.trim_end_matches('/') {
            "" => "/".to_string(),
            trimmed => trimmed.to_string(),
        };
        // SecureStrings are filtered out by SSM itself: not even their
        // ciphertext is returned.
        let plain = ParameterStringFilter::builder()
            .key("Type")
            .option("Equals")
            .values("String")
            .values("StringList")
            .build()
            .map_err(invalid_request)?;
        let pages = ssm
            .get_parameters_by_path()
            .path(root)
            .recursive(true)
            .parameter_filters(plain)
            .with_decryption(false)
            .max_results(10)
            .into_paginator()
            .send();
        all_pages(pages, |p| p.parameters.unwrap_or_default()).await
    })
    .await
}

/// The AMIs the groups and parameters name, for the visibility check.
pub fn images_named(fetched: &Fetched) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    for (_, outcome) in &fetched.template_versions {
        if let Ok(versions) = outcome {
            ids.extend(
                versions
                    .iter()
                    .filter_map(template_image)
                    .map(str::to_string),
            );
        }
    }
    if let Some(Ok(configs)) = &fetched.launch_configurations {
        ids.extend(
            configs
                .iter()
                .filter_map(|c| c.image_id().map(str::to_string)),
        );
    }
    for (_, outcome) in fetched.typed_values.iter().chain(&fetched.by_path) {
        if let Ok(parameters) = outcome {
            ids.extend(
                parameters
                    .iter()
                    .filter_map(image_value)
                    .map(str::to_string),
            );
        }
    }
    ids
}

/// The AMI id a parameter holds; None for any other value, and for a
/// SecureString (its value is never read).
fn image_value(p: &Parameter) -> Option<&str> {
    if p.r#type().is_some_and(|t| t.as_str() == "SecureString") {
        return None;
    }
    p.value().filter(|v| is_image_id(v))
}

fn is_image_id(v: &str) -> bool {
    v.strip_prefix("ami-").is_some_and(|hex| {
        !hex.is_empty() && hex.len() <= 32 && hex.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

/// Which version each template alias names, from the region's $Default and
/// $Latest listing and the numbered versions read for the groups.
struct TemplateIndex {
    /// (template id or name, number) -> version
    versions: BTreeMap<(String, i64), LaunchTemplateVersion>,
    /// template id or name -> ($Default number, $Latest number)
    aliases: BTreeMap<String, (Option<i64>, i64)>,
}

impl TemplateIndex {
    fn new(listed: &[LaunchTemplateVersion], numbered: Vec<LaunchTemplateVersion>) -> Self {
        let mut index = TemplateIndex {
            versions: BTreeMap::new(),
            aliases: BTreeMap::new(),
        };
        let handles = |v: &LaunchTemplateVersion| -> Vec<String> {
            [v.launch_template_id(), v.launch_template_name()]
                .into_iter()
                .flatten()
                .map(str::to_string)
                .collect()
        };
        for v in listed {
            let Some(n) = v.version_number() else {
                continue;
            };
            for handle in handles(v) {
                let entry = index.aliases.entry(handle).or_insert((None, n));
                entry.1 = entry.1.max(n);
                if v.default_version() == Some(true) {
                    entry.0 = Some(n);
                }
            }
        }
        for v in listed.iter().cloned().chain(numbered) {
            let Some(n) = v.version_number() else {
                continue;
            };
            for handle in handles(&v) {
                index.versions.insert((handle, n), v.clone());
            }
        }
        index
    }

    /// The version number `spec` names, and the version when it was read.
    fn resolve(&self, handle: &str, spec: &str) -> (Option<i64>, Option<&LaunchTemplateVersion>) {
        let number = match spec {
            "$Default" => self.aliases.get(handle).and_then(|a| a.0),
            "$Latest" => self.aliases.get(handle).map(|a| a.1),
            n => n.parse().ok(),
        };
        let version = number.and_then(|n| self.versions.get(&(handle.to_string(), n)));
        (number, version)
    }
}

pub fn record(
    harvest: &mut Harvest,
    fetched: Fetched,
    templates: Option<&[LaunchTemplateVersion]>,
    visibility: &Visibility,
) {
    let groups = harvest.take(
        AUTOSCALING,
        "DescribeAutoScalingGroups",
        None,
        fetched.groups,
    );
    let configurations = fetched.launch_configurations.and_then(|outcome| {
        harvest.take(AUTOSCALING, "DescribeLaunchConfigurations", None, outcome)
    });
    let mut numbered = Vec::new();
    for (handle, outcome) in fetched.template_versions {
        if let Some(list) = harvest.take(
            "ec2",
            "DescribeLaunchTemplateVersions",
            Some(&handle),
            outcome,
        ) {
            numbered.extend(list);
        }
    }
    let index = TemplateIndex::new(templates.unwrap_or_default(), numbered);
    let configurations: BTreeMap<&str, &LaunchConfiguration> = configurations
        .iter()
        .flatten()
        .filter_map(|c| Some((c.launch_configuration_name()?, c)))
        .collect();
    for group in groups.iter().flatten() {
        let Some(name) = group.auto_scaling_group_name() else {
            continue;
        };
        group_rows(harvest, group, name, &index, &configurations, visibility);
    }
    parameter_rows(
        harvest,
        fetched.typed,
        fetched.typed_values,
        fetched.by_path,
        visibility,
    );
}

/// A group's row and one row per launch source it names.
fn group_rows(
    harvest: &mut Harvest,
    group: &AutoScalingGroup,
    name: &str,
    index: &TemplateIndex,
    configurations: &BTreeMap<&str, &LaunchConfiguration>,
    visibility: &Visibility,
) {
    harvest.push(AutoScalingGroupRow {
        account_id: harvest.account_id.clone(),
        region: harvest.region.clone(),
        group_name: name.to_string(),
        group_arn: text(group.auto_scaling_group_arn()),
        desired_capacity: group.desired_capacity().map(i64::from),
        min_size: group.min_size().map(i64::from),
        max_size: group.max_size().map(i64::from),
        instance_count: group.instances.as_ref().map(|i| i.len() as i64),
        mixed_instances: Some(group.mixed_instances_policy().is_some()),
    });
    for r in template_refs(group) {
        let spec = r.spec();
        let handle = r.handle();
        let (number, version) = index.resolve(handle, spec);
        let image = version.and_then(template_image);
        let parameter = version
            .and_then(super::ec2_usage::template_parameter)
            .map(str::to_string);
        let (visible, owner) = image.map_or((None, None), |i| visibility.of(i));
        harvest.push(AsgLaunchSourceRow {
            account_id: harvest.account_id.clone(),
            region: harvest.region.clone(),
            group_name: name.to_string(),
            source: r.source.to_string(),
            reference: r.reference(),
            launch_template_id: r
                .id
                .clone()
                .or_else(|| version.and_then(|v| text(v.launch_template_id()))),
            launch_template_name: r
                .name
                .clone()
                .or_else(|| version.and_then(|v| text(v.launch_template_name()))),
            version_spec: r.version.clone(),
            // Only a version that was read is resolved.
            version_number: version.and(number),
            launch_configuration_name: None,
            image_id: image.map(str::to_string),
            image_parameter: parameter,
            image_owner_id: owner,
            image_visible: visible,
        });
    }
    if let Some(lc) = group.launch_configuration_name() {
        let image = configurations.get(lc).and_then(|c| c.image_id());
        let (visible, owner) = image.map_or((None, None), |i| visibility.of(i));
        harvest.push(AsgLaunchSourceRow {
            account_id: harvest.account_id.clone(),
            region: harvest.region.clone(),
            group_name: name.to_string(),
            source: "launch_configuration".to_string(),
            reference: lc.to_string(),
            launch_configuration_name: Some(lc.to_string()),
            image_id: image.map(str::to_string),
            image_owner_id: owner,
            image_visible: visible,
            ..Default::default()
        });
    }
}

const AUTOSCALING: &str = "autoscaling";

/// One row per parameter: those listed for their data type (a row even when
/// the value read failed: `value_read` false makes its results `unknown`),
/// and those found under the configured paths. A failed listing is recorded
/// for the whole account-region: which parameters exist is then not known.
fn parameter_rows(
    harvest: &mut Harvest,
    typed: CallResult<Vec<ParameterMetadata>>,
    typed_values: Vec<(String, CallResult<Vec<Parameter>>)>,
    by_path: Vec<(String, CallResult<Vec<Parameter>>)>,
    visibility: &Visibility,
) {
    let mut rows: BTreeMap<String, SsmParameterRow> = BTreeMap::new();
    let account = harvest.account_id.clone();
    let region = harvest.region.clone();
    let row = |name: &str, selected_by: &str| SsmParameterRow {
        account_id: account.clone(),
        region: region.clone(),
        name: name.to_string(),
        selected_by: Some(selected_by.to_string()),
        value_read: Some(false),
        ..Default::default()
    };
    let fill = |row: &mut SsmParameterRow, p: &Parameter| {
        let image = image_value(p);
        let (visible, owner) = image.map_or((None, None), |i| visibility.of(i));
        row.parameter_type = enum_text(p.r#type());
        row.data_type = text(p.data_type()).or(row.data_type.take());
        row.value_read = Some(p.r#type().is_none_or(|t| t.as_str() != "SecureString"));
        row.image_id = image.map(str::to_string);
        row.version = Some(p.version());
        row.last_modified = smithy_time(p.last_modified_date()).or(row.last_modified.take());
        row.image_owner_id = owner;
        row.image_visible = visible;
    };
    if let Some(listed) = harvest.take("ssm", "DescribeParameters", None, typed) {
        for m in &listed {
            let Some(name) = m.name() else { continue };
            let mut r = row(name, "data_type");
            r.parameter_type = enum_text(m.r#type());
            r.data_type = text(m.data_type());
            r.version = Some(m.version());
            r.last_modified = smithy_time(m.last_modified_date());
            rows.insert(name.to_string(), r);
        }
        for (chunk, outcome) in typed_values {
            match outcome {
                Ok(list) => {
                    harvest.take("ssm", "GetParameters", None, Ok(()));
                    for p in &list {
                        if let Some(r) = p.name().and_then(|n| rows.get_mut(n)) {
                            fill(r, p);
                        }
                    }
                }
                // Each parameter of the chunk is named: Coverage says why
                // every one of them is unknown.
                Err(e) => {
                    for name in chunk.split('\n') {
                        harvest.take::<()>("ssm", "GetParameters", Some(name), Err(e.clone()));
                    }
                }
            }
        }
    }
    for (_, outcome) in by_path {
        // Which parameters lie under the path is not known: a gap for the
        // whole account-region, not for one resource.
        if let Some(list) = harvest.take("ssm", "GetParametersByPath", None, outcome) {
            for p in &list {
                let Some(name) = p.name() else { continue };
                let r = rows
                    .entry(name.to_string())
                    .or_insert_with(|| row(name, "path"));
                if r.value_read != Some(true) {
                    fill(r, p);
                }
            }
        }
    }
    for (_, r) in rows {
        harvest.push(r);
    }
}
