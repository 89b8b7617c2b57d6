//! `amiaudit.toml`: settings an organization keeps next to its audits.
//!
//! Read from `--config FILE`, or `./amiaudit.toml` when it exists. Flags on
//! the command line override it: the binary fills the same [`ScanSection`]
//! and [`AuditSection`] from its flags, and [`ScanSection::or`] /
//! [`AuditSection::or`] take each setting from the flags where given, else
//! from the file. Unknown keys and values of the wrong type are input errors
//! naming the file, line and key.
//!
//! ```toml
//! [scan]
//! org = true
//! regions = ["eu-west-1", "us-east-1"]
//! role_name = "AmiAuditRole"
//!
//! [audit]
//! fail_on = "high"
//! waivers = "waivers.yaml"
//! formats = ["html", "csv", "json"]
//!
//! [params.AMI-STALE]
//! max_age_days = 60
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::policy::{ParamOverrides, ParamValue, PolicyPack, Severity, param_spec};
use crate::render::{FormatWord, OutputFormat};

pub const DEFAULT_FILE: &str = "amiaudit.toml";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub scan: ScanSection,
    #[serde(default)]
    pub audit: AuditSection,
    /// Rule id -> parameter -> value.
    #[serde(default)]
    pub params: BTreeMap<String, BTreeMap<String, toml::Value>>,
    /// Where the file was read from, for messages and relative paths.
    #[serde(skip)]
    pub path: Option<PathBuf>,
}

/// Threshold for a failing exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailOn {
    Critical,
    High,
    Medium,
    Low,
    Info,
    None,
}

impl FailOn {
    pub const NAMES: [&'static str; 6] = ["critical", "high", "medium", "low", "info", "none"];

    pub fn parse(text: &str) -> Option<FailOn> {
        Some(match text {
            "critical" => FailOn::Critical,
            "high" => FailOn::High,
            "medium" => FailOn::Medium,
            "low" => FailOn::Low,
            "info" => FailOn::Info,
            "none" => FailOn::None,
            _ => return None,
        })
    }

    /// The least severe failure that sets exit code 1.
    pub fn threshold(self) -> Option<Severity> {
        match self {
            FailOn::Critical => Some(Severity::Critical),
            FailOn::High => Some(Severity::High),
            FailOn::Medium => Some(Severity::Medium),
            FailOn::Low => Some(Severity::Low),
            FailOn::Info => Some(Severity::Info),
            FailOn::None => None,
        }
    }
}

/// Settings of `amiaudit audit`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSection {
    #[serde(default)]
    pub policies: Vec<PathBuf>,
    pub waivers: Option<PathBuf>,
    pub fail_on: Option<FailOn>,
    /// Format names, or `all`.
    #[serde(default, deserialize_with = "format_names")]
    pub formats: Option<Vec<OutputFormat>>,
    pub framework: Option<String>,
    pub templates: Option<PathBuf>,
    /// Gzip the large machine files (`<name>.gz`); see `--compress`.
    pub compress: Option<bool>,
}

impl AuditSection {
    /// Each setting from `self` (the flags) where given, else from `base`.
    pub fn or(self, base: &AuditSection) -> AuditSection {
        AuditSection {
            policies: if self.policies.is_empty() {
                base.policies.clone()
            } else {
                self.policies
            },
            waivers: self.waivers.or_else(|| base.waivers.clone()),
            fail_on: self.fail_on.or(base.fail_on),
            formats: self.formats.or_else(|| base.formats.clone()),
            framework: self.framework.or_else(|| base.framework.clone()),
            templates: self.templates.or_else(|| base.templates.clone()),
            compress: self.compress.or(base.compress),
        }
    }
}

/// `"all"` or a list of region codes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum RegionsSetting {
    Word(String),
    List(Vec<String>),
}

/// Scope and role settings of `amiaudit scan` and `audit --live`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScanSection {
    /// Every ACTIVE account of the organization.
    pub org: Option<bool>,
    /// Only the accounts under this OU (implies `org`).
    pub ou: Option<String>,
    pub accounts: Option<Vec<String>>,
    pub exclude_accounts: Option<Vec<String>>,
    /// `"all"` or a list of region codes.
    pub regions: Option<RegionsSetting>,
    pub role_name: Option<String>,
    pub role_arn_template: Option<String>,
    pub external_id: Option<String>,
    pub role_session_name: Option<String>,
    pub profile: Option<String>,
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
    pub concurrency: Option<usize>,
    /// Attempts per call, the first included.
    pub max_attempts: Option<u32>,
    /// `BURST/RATE` or `off`: EC2 request pacing per account, region and action.
    pub ec2_pacing: Option<String>,
    /// `all` | `ami-backing` | `none`: which snapshots get a permission read.
    pub snapshot_permissions: Option<String>,
    /// `reuse` | `create` | `off`: whether image usage reports are read (and,
    /// with `create`, asked for).
    pub image_usage_reports: Option<String>,
    /// The oldest usage report taken, in days (config file only).
    pub image_usage_report_max_age_days: Option<u32>,
    /// SSM parameter paths read for AMI ids (config file only).
    pub ami_parameter_paths: Option<Vec<String>>,
}

/// `[audit] formats`: format names, where `all` names every format.
fn format_names<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<Vec<OutputFormat>>, D::Error> {
    let names: Option<Vec<String>> = serde::Deserialize::deserialize(d)?;
    let Some(names) = names else { return Ok(None) };
    let words = names
        .iter()
        .map(|n| {
            FormatWord::parse(n).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "`{}` is not one of {}",
                    n.escape_debug(),
                    FormatWord::NAMES.join(", ")
                ))
            })
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(Some(FormatWord::formats(&words)))
}

impl ScanSection {
    /// Each setting from `self` (the flags) where given, else from `base`.
    pub fn or(self, base: &ScanSection) -> ScanSection {
        macro_rules! pick {
            ($($field:ident),* $(,)?) => {
                ScanSection { $($field: self.$field.or_else(|| base.$field.clone())),* }
            };
        }
        pick!(
            org,
            ou,
            accounts,
            exclude_accounts,
            regions,
            role_name,
            role_arn_template,
            external_id,
            role_session_name,
            profile,
            region,
            endpoint_url,
            concurrency,
            max_attempts,
            ec2_pacing,
            snapshot_permissions,
            image_usage_reports,
            image_usage_report_max_age_days,
            ami_parameter_paths,
        )
    }

    /// Whether any scan setting was given (the flags of `audit` without `--live`).
    pub fn any(&self) -> bool {
        *self != ScanSection::default()
    }

    /// What to scan, without how to reach AWS (profile, region, endpoint):
    /// the connection settings also serve delivery, without `--live`.
    pub fn scope(&self) -> ScanSection {
        ScanSection {
            profile: None,
            region: None,
            endpoint_url: None,
            ..self.clone()
        }
    }
}

/// Loads the explicit file, or `./amiaudit.toml` if present, or defaults.
pub fn load(explicit: Option<&Path>) -> Result<Config> {
    let path = match explicit {
        Some(p) => p.to_path_buf(),
        None if Path::new(DEFAULT_FILE).is_file() => PathBuf::from(DEFAULT_FILE),
        None => return Ok(Config::default()),
    };
    let text = Error::read_text(&path, "config file not found")?;
    let mut config: Config = toml::from_str(&text).map_err(|e| {
        let at = e
            .span()
            .map(|s| {
                let before = text.get(..s.start).unwrap_or(&text);
                let line = before.matches('\n').count() + 1;
                let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
                format!(":{line}:{col}")
            })
            .unwrap_or_default();
        Error::input(format!(
            "{}{at}: {}",
            path.display(),
            e.message().lines().next().unwrap_or("")
        ))
    })?;
    // Relative paths in the file are relative to the file.
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let rebase = |p: &PathBuf| {
        if p.is_absolute() {
            p.clone()
        } else {
            base.join(p)
        }
    };
    config.audit.policies = config.audit.policies.iter().map(rebase).collect();
    config.audit.waivers = config.audit.waivers.as_ref().map(rebase);
    config.audit.templates = config.audit.templates.as_ref().map(rebase);
    config.path = Some(path);
    Ok(config)
}

impl Config {
    pub fn name(&self) -> String {
        self.path
            .as_ref()
            .map_or_else(|| DEFAULT_FILE.to_string(), |p| p.display().to_string())
    }

    /// The `[params]` tables, checked against the pack's rules and types.
    pub fn param_overrides(&self, pack: &PolicyPack) -> Result<ParamOverrides> {
        let mut out = ParamOverrides::new();
        for (rule, values) in &self.params {
            for (name, value) in values {
                let at = format!("{}: [params.{rule}] {name}", self.name());
                let spec =
                    param_spec(pack, rule, name).map_err(|m| Error::input(format!("{at}: {m}")))?;
                let parsed = from_toml(value).ok_or_else(|| {
                    Error::input(format!("{at}: expects {}", spec.default.type_name()))
                })?;
                if !spec.default.accepts(&parsed) {
                    return Err(Error::input(format!(
                        "{at}: expects {}, got {}",
                        spec.default.type_name(),
                        parsed.type_name()
                    )));
                }
                out.entry(rule.clone())
                    .or_default()
                    .insert(name.clone(), parsed);
            }
        }
        Ok(out)
    }
}

fn from_toml(value: &toml::Value) -> Option<ParamValue> {
    Some(match value {
        toml::Value::String(s) => ParamValue::Str(s.clone()),
        toml::Value::Integer(i) => ParamValue::Int(*i),
        toml::Value::Float(f) => ParamValue::Float(*f),
        toml::Value::Boolean(b) => ParamValue::Bool(*b),
        toml::Value::Array(items) => ParamValue::List(
            items
                .iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()?,
        ),
        _ => return None,
    })
}
