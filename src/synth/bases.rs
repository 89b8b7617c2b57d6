//! The base images the organization's images are built on, and the chain
//! GetImageAncestry gives for each: Amazon's Amazon Linux and Windows
//! images, and the community image the legacy account built on (so
//! AMI-BASE-UNAPPROVED fails there). No random draws: adding a chain never
//! moves the generator's stream.

use chrono::{DateTime, Duration, Utc};

use super::{AMAZON_OWNER, COMMUNITY_OWNER, Gen};
use crate::inventory::Value;

/// What an image is built on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BaseKind {
    AmazonLinux,
    Windows,
    Community,
}

/// Amazon's Windows images are owned by this account.
const AMAZON_WINDOWS_OWNER: &str = "801119661308";

/// One base image in one region.
pub(super) struct Base {
    pub(super) id: String,
    alias: Option<&'static str>,
    owner: &'static str,
    name: &'static str,
}

impl BaseKind {
    pub(super) fn of(family: &str, legacy: bool) -> BaseKind {
        if legacy {
            BaseKind::Community
        } else if family.starts_with("win") {
            BaseKind::Windows
        } else {
            BaseKind::AmazonLinux
        }
    }

    /// The base in `region` (AMI ids are regional).
    pub(super) fn base(self, region: &str) -> Base {
        let (alias, owner, name) = match self {
            BaseKind::AmazonLinux => (
                Some("amazon"),
                AMAZON_OWNER,
                "al2023-ami-2023.9.20261110.0-kernel-6.1-x86_64",
            ),
            BaseKind::Windows => (
                Some("amazon"),
                AMAZON_WINDOWS_OWNER,
                "Windows_Server-2022-English-Full-Base-2026.11.12",
            ),
            BaseKind::Community => (
                None,
                COMMUNITY_OWNER,
                "ubuntu-22.04-hardened-community-20240301",
            ),
        };
        Base {
            id: format!("ami-0{:016x}", fnv1a(&format!("{name}@{region}"))),
            alias,
            owner,
            name,
        }
    }
}

/// FNV-1a, 64 bits: a stable id from a name.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The columns of an image built (CreateImage) from an instance of `base`
/// in its own region: its source, and the instance it was made from.
pub(super) fn source_cells(
    image_id: &str,
    region: &str,
    base: &Base,
) -> [(&'static str, Value); 3] {
    [
        ("source_image_id", base.id.clone().into()),
        ("source_image_region", region.into()),
        (
            "source_instance_id",
            format!("i-{}", image_id.trim_start_matches("ami-")).into(),
        ),
    ]
}

/// One row of an image's chain, `depth` links from it.
pub(super) struct Link<'a> {
    pub(super) account: &'a str,
    pub(super) region: &'a str,
    pub(super) image_id: &'a str,
    pub(super) depth: i64,
}

/// The chain's root: the base, as GetImageAncestry gives it (its alias) and
/// DescribeImages shows it (owner and name), built `built` minus a month.
pub(super) fn push_root(
    g: &mut Gen,
    link: &Link<'_>,
    base: &Base,
    base_region: &str,
    built: DateTime<Utc>,
) {
    g.push(
        "image_ancestry",
        vec![
            ("account_id", Value::from(link.account.to_string())),
            ("region", link.region.into()),
            ("image_id", link.image_id.into()),
            ("depth", link.depth.into()),
            ("ancestor_image_id", base.id.clone().into()),
            ("ancestor_region", base_region.into()),
            ("creation_date", (built - Duration::days(30)).into()),
            ("owner_alias", base.alias.into()),
            ("owner_id", base.owner.into()),
            ("name", base.name.into()),
            ("described", true.into()),
        ],
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bases_are_regional_and_stable() {
        let here = BaseKind::AmazonLinux.base("us-east-1");
        assert_eq!(here.id, BaseKind::AmazonLinux.base("us-east-1").id);
        assert_ne!(here.id, BaseKind::AmazonLinux.base("eu-west-1").id);
        assert_eq!(here.id.len(), "ami-0".len() + 16);
        assert_eq!(BaseKind::of("erp-app-golden", true), BaseKind::Community);
        assert_eq!(BaseKind::of("win2022-golden", false), BaseKind::Windows);
    }
}
