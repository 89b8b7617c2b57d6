//! The planted results, each with why: the list the sample's README shows.

use super::*;

pub const PLANTED: &[Planted] = &[
    Planted {
        rule: "AMI-PUBLIC",
        resource: PUBLIC_IMAGE,
        expect: Expect::Fail,
        why: "payments debug image made public by hand",
    },
    Planted {
        rule: "AMI-SHARED-OUTSIDE-ORG",
        resource: SHARED_OUTSIDE,
        expect: Expect::Fail,
        why: "web image shared with partner account 999988887777",
    },
    Planted {
        rule: "AMI-SHARED-ACCOUNT-BY-ACCOUNT",
        resource: SHARED_ONE_BY_ONE,
        expect: Expect::Fail,
        why: "factory image shared with 7 accounts one by one",
    },
    Planted {
        rule: "AMI-UNENCRYPTED",
        resource: LEGACY_IMAGE,
        expect: Expect::Fail,
        why: "legacy ERP image with an unencrypted root volume",
    },
    Planted {
        rule: "AMI-BASE-UNAPPROVED",
        resource: LEGACY_IMAGE,
        expect: Expect::Fail,
        why: "legacy ERP image built on a community Ubuntu image",
    },
    Planted {
        rule: "AMI-AWS-MANAGED-KEY",
        resource: AWS_KEY_IMAGE,
        expect: Expect::Fail,
        why: "staging image encrypted with aws/ebs",
    },
    Planted {
        rule: "AMI-NO-DEPRECATION",
        resource: LEGACY_IMAGE,
        expect: Expect::Fail,
        why: "legacy ERP image, no deprecation time",
    },
    Planted {
        rule: "AMI-STALE",
        resource: LEGACY_IMAGE,
        expect: Expect::Fail,
        why: "legacy ERP image from January 2025",
    },
    Planted {
        rule: "AMI-DEPRECATED-IN-USE",
        resource: DEPRECATED_IN_USE,
        expect: Expect::Fail,
        why: "deprecated payments image still run by i-0de9ecaedf00d0001",
    },
    Planted {
        rule: "INSTANCE-AMI-MISSING",
        resource: MISSING_AMI_TEMPLATE,
        expect: Expect::Fail,
        why: "web-dev launch template pointing at a deregistered AMI",
    },
    Planted {
        rule: "SNAP-ORPHANED",
        resource: ORPHANED_SNAPSHOT,
        expect: Expect::Fail,
        why: "factory snapshot left behind by a deregistered AMI",
    },
    Planted {
        rule: "SNAP-PUBLIC",
        resource: PUBLIC_SNAPSHOT,
        expect: Expect::Fail,
        why: "legacy ERP snapshot restorable by anyone",
    },
    Planted {
        rule: "SNAP-SHARED-OUTSIDE-ORG",
        resource: OUTSIDE_SNAPSHOT,
        expect: Expect::Fail,
        why: "data snapshot shared with 444455556666",
    },
    Planted {
        rule: "AMI-UNHEALTHY-STATE",
        resource: FAILED_BUILD,
        expect: Expect::Fail,
        why: "web-dev build that failed",
    },
    Planted {
        rule: "AMI-REQUIRED-TAGS",
        resource: SANDBOX_IMAGE,
        expect: Expect::Fail,
        why: "sandbox image with no Owner tag",
    },
    Planted {
        rule: "AMI-NAMING",
        resource: SANDBOX_IMAGE,
        expect: Expect::Fail,
        why: "`Alice-Test-Image` breaks the naming convention",
    },
    Planted {
        rule: "AMI-NOT-PIPELINE-BUILT",
        resource: SANDBOX_IMAGE,
        expect: Expect::Fail,
        why: "sandbox image built by hand",
    },
    Planted {
        rule: "INSTANCE-UNAPPROVED-AMI",
        resource: COMMUNITY_INSTANCE,
        expect: Expect::Fail,
        why: "sandbox instance on a community AMI",
    },
    Planted {
        rule: "VULN-CRITICAL",
        resource: DEPRECATED_IN_USE,
        expect: Expect::Fail,
        why: "CVE-2024-6387 (regreSSHion) on the deprecated payments image",
    },
    Planted {
        rule: "FAMILY-REGION-GAP",
        resource: "al2023-base-golden@ap-southeast-1",
        expect: Expect::Fail,
        why: "newest al2023 base image not copied to ap-southeast-1",
    },
    Planted {
        rule: "AMI-PUBLIC",
        resource: THROTTLED_IMAGE,
        expect: Expect::Unknown,
        why: "DescribeImageAttribute was throttled for this image",
    },
    Planted {
        rule: "AMI-SHARED-OUTSIDE-ORG",
        resource: THROTTLED_IMAGE,
        expect: Expect::Unknown,
        why: "DescribeImageAttribute was throttled for this image",
    },
    Planted {
        rule: "REGION-INSPECTOR-EC2-OFF",
        resource: "eu-west-1",
        expect: Expect::Unknown,
        why: "acme-data-prod denied inspector2:BatchGetAccountStatus",
    },
    Planted {
        rule: "SNAP-SHARED-OUTSIDE-ORG",
        resource: THROTTLED_SNAPSHOT,
        expect: Expect::Unknown,
        why: "DescribeSnapshotAttribute was throttled for this snapshot, which backs no AMI",
    },
    Planted {
        rule: "PIPELINE-REGION-GAP",
        resource: AL2023_PIPELINE,
        expect: Expect::Fail,
        why: "al2023 base pipeline leaves out ap-southeast-1, where its older images run",
    },
    Planted {
        rule: "PIPELINE-SHARED-OUTSIDE-ORG",
        resource: UBUNTU_PIPELINE,
        expect: Expect::Fail,
        why: "ubuntu pipeline grants launch permission to 999988887777",
    },
    Planted {
        rule: "PIPELINE-DISTRIBUTION-NO-CMK",
        resource: UBUNTU_PIPELINE,
        expect: Expect::Fail,
        why: "ubuntu pipeline copies to eu-west-1 without a KMS key",
    },
    Planted {
        rule: "PIPELINE-TESTS-OFF",
        resource: WINDOWS_PIPELINE,
        expect: Expect::Fail,
        why: "Windows pipeline with image tests turned off",
    },
    Planted {
        rule: "PIPELINE-SCANNING-OFF",
        resource: WINDOWS_PIPELINE,
        expect: Expect::Fail,
        why: "Windows pipeline scans nothing: Inspector scans the test instance, and its tests are off",
    },
    Planted {
        rule: "PIPELINE-NO-LIFECYCLE",
        resource: WINDOWS_PIPELINE,
        expect: Expect::Fail,
        why: "no lifecycle policy selects the Windows recipe",
    },
    Planted {
        rule: "PIPELINE-FAILING",
        resource: RHEL_PIPELINE,
        expect: Expect::Fail,
        why: "RHEL CIS pipeline failed its last 4 runs",
    },
    Planted {
        rule: "PIPELINE-SCANNING-OFF",
        resource: EKS_PIPELINE,
        expect: Expect::Fail,
        why: "EKS node pipeline with image scanning off",
    },
    Planted {
        rule: "PIPELINE-BUILD-IMDSV1",
        resource: EKS_PIPELINE,
        expect: Expect::Fail,
        why: "EKS node build instances accept IMDSv1",
    },
    Planted {
        rule: "PIPELINE-PARENT-PINNED",
        resource: EKS_PIPELINE,
        expect: Expect::Fail,
        why: "EKS node recipe built on one fixed AMI",
    },
    Planted {
        rule: "PIPELINE-SHARED-ACCOUNT-BY-ACCOUNT",
        resource: EKS_PIPELINE,
        expect: Expect::Fail,
        why: "EKS node AMIs shared with 7 accounts one by one",
    },
    Planted {
        rule: "PIPELINE-DISABLED",
        resource: LEGACY_PIPELINE,
        expect: Expect::Fail,
        why: "retired Windows 2016 pipeline, disabled",
    },
    Planted {
        rule: "PIPELINE-NO-SCHEDULE",
        resource: LEGACY_PIPELINE,
        expect: Expect::Fail,
        why: "retired Windows 2016 pipeline, no schedule",
    },
    Planted {
        rule: "PIPELINE-RECIPE-UNENCRYPTED",
        resource: LEGACY_PIPELINE,
        expect: Expect::Fail,
        why: "retired Windows 2016 recipe maps an unencrypted root volume",
    },
    Planted {
        rule: "PIPELINE-STALE-OUTPUT",
        resource: LEGACY_PIPELINE,
        expect: Expect::Fail,
        why: "retired Windows 2016 pipeline's newest image is 200 days old",
    },
    Planted {
        rule: "PIPELINE-NO-LIFECYCLE",
        resource: SANDBOX_PIPELINE,
        expect: Expect::Fail,
        why: "the sandbox's lifecycle policy selects its recipe but retires Image Builder's image records only (includeResources.amis off)",
    },
    Planted {
        rule: "PIPELINE-PUBLIC",
        resource: SANDBOX_PIPELINE,
        expect: Expect::Fail,
        why: "sandbox pipeline grants launch permission to all",
    },
    Planted {
        rule: "PIPELINE-SHARED-OUTSIDE-ORG",
        resource: SECURITY_PIPELINE,
        expect: Expect::Unknown,
        why: "GetDistributionConfiguration was throttled for the security tools pipeline",
    },
    Planted {
        rule: "INSTANCE-GOLDEN-BEHIND",
        resource: DEPRECATED_USER,
        expect: Expect::Fail,
        why: "payments-api-legacy runs a payments-api version months behind the newest",
    },
    Planted {
        rule: "ASG-LAUNCHES-OUTDATED-AMI",
        resource: STUCK_ASG,
        expect: Expect::Fail,
        why: "payments-api group pins template version 3, which launches the deprecated v2 AMI",
    },
    Planted {
        rule: "LT-VERSION-OUTDATED-AMI",
        resource: STUCK_TEMPLATE_VERSION,
        expect: Expect::Fail,
        why: "version 3 of the payments-api template, still used by its group, names the deprecated AMI",
    },
    Planted {
        rule: "SSM-PARAM-OUTDATED-AMI",
        resource: STALE_PARAMETER,
        expect: Expect::Fail,
        why: "the parameter payments stacks read was not updated since the deprecated v2 AMI",
    },
    Planted {
        rule: "ASG-UNAPPROVED-AMI",
        resource: VENDOR_ASG,
        expect: Expect::Fail,
        why: "sandbox group launching a community AMI",
    },
    Planted {
        rule: "ASG-LAUNCHES-OUTDATED-AMI",
        resource: UNRESOLVED_ASG,
        expect: Expect::Unknown,
        why: "DescribeLaunchTemplateVersions was throttled for the web-frontend template its group pins",
    },
];

/// The two tables of `sample-data/README.md` that list [`PLANTED`].
pub fn markdown_tables() -> (String, String) {
    let table = |expect: Expect, header: &str| {
        let mut out = format!("| rule | resource | {header} |\n|---|---|---|\n");
        for p in PLANTED.iter().filter(|p| p.expect == expect) {
            out.push_str(&format!("| {} | `{}` | {} |\n", p.rule, p.resource, p.why));
        }
        out
    };
    (
        table(Expect::Fail, "what is wrong"),
        table(Expect::Unknown, "why the result is `unknown`"),
    )
}
