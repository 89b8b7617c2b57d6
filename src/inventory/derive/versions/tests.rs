//! The order of a family's versions, from rows written as the API reference
//! describes them.

use std::collections::BTreeMap;

use super::*;

const DAY: i64 = 86_400_000;
const NOW: i64 = 1_000 * DAY;

/// One image: (id, region, state, created ms, source id, source region,
/// source instance); account `a`, family `web`.
type Img = (
    &'static str,
    &'static str,
    Option<&'static str>,
    Option<i64>,
    Option<&'static str>,
    Option<&'static str>,
    Option<&'static str>,
);

fn images(rows: &[Img]) -> DataFrame {
    let col = |f: fn(&Img) -> Option<&'static str>| rows.iter().map(f).collect::<Vec<_>>();
    df!(
        "account_id" => rows.iter().map(|_| "a").collect::<Vec<_>>(),
        "region" => col(|r| Some(r.1)),
        "image_id" => col(|r| Some(r.0)),
        "family" => rows.iter().map(|_| "web").collect::<Vec<_>>(),
        "state" => col(|r| r.2),
        "creation_date" => rows.iter().map(|r| r.3).collect::<Vec<_>>(),
        "source_image_id" => col(|r| r.4),
        "source_image_region" => col(|r| r.5),
        "source_instance_id" => col(|r| r.6),
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

/// image_ancestry rows: (image, depth, ancestor, its creation).
fn ancestry(rows: &[(&str, i64, &str, i64)]) -> DataFrame {
    df!(
        "account_id" => rows.iter().map(|_| "a").collect::<Vec<_>>(),
        "region" => rows.iter().map(|_| B).collect::<Vec<_>>(),
        "image_id" => rows.iter().map(|r| r.0).collect::<Vec<_>>(),
        "depth" => rows.iter().map(|r| r.1).collect::<Vec<_>>(),
        "ancestor_image_id" => rows.iter().map(|r| r.2).collect::<Vec<_>>(),
        "ancestor_region" => rows.iter().map(|_| A).collect::<Vec<_>>(),
        "creation_date" => rows.iter().map(|r| r.3).collect::<Vec<_>>(),
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

fn no_ancestry() -> DataFrame {
    ancestry(&[])
}

/// (versions_behind, days_behind, family_newest_image_id)
type Place = (Option<i64>, Option<i64>, Option<String>);

/// image id -> its place among its family's versions.
fn order(rows: &[Img], ancestry: DataFrame, collected: bool) -> BTreeMap<String, Place> {
    let mut df = images(rows);
    let lineage = Lineage {
        instance_ids_collected: collected,
    };
    for column in family_versions(&df, &ancestry, &lineage, NOW).unwrap_or_else(|e| panic!("{e}")) {
        df.with_column(column).unwrap_or_else(|e| panic!("{e}"));
    }
    let ids = str_column(&df, "image_id").unwrap_or_else(|e| panic!("{e}"));
    let behind = i64_column(&df, "versions_behind").unwrap_or_else(|e| panic!("{e}"));
    let days = i64_column(&df, "days_behind").unwrap_or_else(|e| panic!("{e}"));
    let newest = str_column(&df, "family_newest_image_id").unwrap_or_else(|e| panic!("{e}"));
    (0..df.height())
        .map(|i| {
            (
                ids[i].unwrap_or_default().to_string(),
                (behind[i], days[i], newest[i].map(str::to_string)),
            )
        })
        .collect()
}

const A: &str = "eu-west-1";
const B: &str = "us-east-1";
const OK: Option<&str> = Some("available");

#[test]
fn copies_are_ordered_by_their_original_not_by_the_copy() {
    // v1 built 30 days ago, v2 10 days ago, in A; copied to B out of
    // order: v2 first (9 days ago), v1 last (2 days ago).
    let m = order(
        &[
            ("v1", A, OK, Some(NOW - 30 * DAY), None, None, Some("i-1")),
            ("v2", A, OK, Some(NOW - 10 * DAY), None, None, Some("i-2")),
            ("c2", B, OK, Some(NOW - 9 * DAY), Some("v2"), Some(A), None),
            ("c1", B, OK, Some(NOW - 2 * DAY), Some("v1"), Some(A), None),
        ],
        no_ancestry(),
        true,
    );
    assert_eq!(m["c2"], (Some(0), Some(0), Some("c2".into())));
    // Behind by one version, which arrived here 9 days ago.
    assert_eq!(m["c1"], (Some(1), Some(9), Some("c2".into())));
    assert_eq!(m["v1"], (Some(1), Some(10), Some("v2".into())));
}

#[test]
fn a_copy_whose_source_is_elsewhere_is_ordered_by_its_ancestry() {
    let rows = [
        ("c2", B, OK, Some(NOW - 9 * DAY), Some("v2"), Some(A), None),
        ("c1", B, OK, Some(NOW - 2 * DAY), Some("v1"), Some(A), None),
    ];
    let sources = [
        ("c1", 1, "v1", NOW - 30 * DAY),
        ("c2", 1, "v2", NOW - 10 * DAY),
    ];
    let m = order(&rows, ancestry(&sources), true);
    assert_eq!(m["c1"].0, Some(1));
    assert_eq!(m["c2"].0, Some(0));
    // A source with ancestors of its own may itself be a copy (made
    // last week of a version built long ago): its time is not the
    // build's, and the order is not known.
    let deeper = [
        ("c1", 1, "v1", NOW - 30 * DAY),
        ("c2", 1, "v2-copy", NOW - 10 * DAY),
        ("c2", 2, "v2", NOW - 400 * DAY),
    ];
    let m = order(&rows, ancestry(&deeper), true);
    assert_eq!(m["c1"].0, None);
    assert_eq!(m["c2"].0, None);
    // Without the ancestry, the copies' places are not known.
    let m = order(&rows, no_ancestry(), true);
    assert_eq!(m["c1"], (None, None, None));
    assert_eq!(m["c2"], (None, None, None));
}

#[test]
fn versions_built_in_the_same_second_are_not_ordered() {
    let t = NOW - 5 * DAY;
    let m = order(
        &[
            ("old", A, OK, Some(t - 20 * DAY), None, None, None),
            ("x", A, OK, Some(t + 100), None, None, None),
            ("y", A, OK, Some(t + 900), None, None, None),
        ],
        no_ancestry(),
        true,
    );
    assert_eq!(m["x"], (None, None, None));
    assert_eq!(m["y"], (None, None, None));
    // Both are certainly newer than the old one.
    assert_eq!(m["old"], (Some(2), Some(5), None));
}

#[test]
fn a_version_whose_time_or_state_is_not_known_leaves_the_order_not_known() {
    // A newer image with no creation date: an image two versions
    // behind cannot pass for one behind.
    let m = order(
        &[
            ("v1", A, OK, Some(NOW - 60 * DAY), None, None, None),
            ("v2", A, OK, Some(NOW - 30 * DAY), None, None, None),
            ("v3", A, OK, None, None, None, None),
        ],
        no_ancestry(),
        true,
    );
    assert_eq!(m["v1"].0, None);
    assert_eq!(m["v2"].0, None);
    // A newer image whose state is not known may be a version.
    let m = order(
        &[
            ("v1", A, OK, Some(NOW - 60 * DAY), None, None, None),
            ("v2", A, OK, Some(NOW - 30 * DAY), None, None, None),
            ("v3", A, None, Some(NOW - DAY), None, None, None),
        ],
        no_ancestry(),
        true,
    );
    assert_eq!(m["v1"].0, None);
    assert_eq!(m["v2"].0, None);
    // An older one whose state is not known changes nothing above it.
    let m = order(
        &[
            ("v0", A, None, Some(NOW - 90 * DAY), None, None, None),
            ("v1", A, OK, Some(NOW - 60 * DAY), None, None, None),
            ("v2", A, OK, Some(NOW - 30 * DAY), None, None, None),
        ],
        no_ancestry(),
        true,
    );
    assert_eq!(m["v1"], (Some(1), Some(30), Some("v2".into())));
    // A failed image is no version at all.
    let m = order(
        &[
            ("v1", A, OK, Some(NOW - 60 * DAY), None, None, None),
            ("v2", A, Some("failed"), None, None, None, None),
        ],
        no_ancestry(),
        true,
    );
    assert_eq!(m["v1"], (Some(0), Some(0), Some("v1".into())));
}

#[test]
fn older_inventories_tell_only_cross_region_copies() {
    // Before schema 5, SourceInstanceId was not collected: an image
    // with a source in its own region may be a copy or a CreateImage.
    let rows = [
        ("base", A, OK, Some(NOW - 400 * DAY), None, None, None),
        (
            "v1",
            A,
            OK,
            Some(NOW - 30 * DAY),
            Some("base"),
            Some(A),
            None,
        ),
        (
            "v2",
            A,
            OK,
            Some(NOW - 10 * DAY),
            Some("base"),
            Some(A),
            None,
        ),
    ];
    let m = order(&rows, no_ancestry(), false);
    assert_eq!(m["v1"].0, None);
    // With it collected (and absent), they are copies of one base: a tie.
    let m = order(&rows, no_ancestry(), true);
    assert_eq!(m["v1"].0, None);
    // Created from an instance, each is its own version.
    let rows = [
        (
            "v1",
            A,
            OK,
            Some(NOW - 30 * DAY),
            Some("base"),
            Some(A),
            Some("i-1"),
        ),
        (
            "v2",
            A,
            OK,
            Some(NOW - 10 * DAY),
            Some("base"),
            Some(A),
            Some("i-2"),
        ),
    ];
    let m = order(&rows, no_ancestry(), true);
    assert_eq!(m["v1"], (Some(1), Some(10), Some("v2".into())));
}

/// The walk `Family::newer_than` replaced: every other member of the
/// family read for each version.
fn newer_than_by_walk(
    x: usize,
    bx: i64,
    family: &[usize],
    versions: &[Version],
) -> Option<(i64, Option<i64>)> {
    let mut count = 0;
    let mut first: Option<i64> = None;
    for &y in family {
        if y == x {
            continue;
        }
        let v = &versions[y];
        match (v.available, v.built) {
            (_, Some(by)) if by < bx => {}
            (Some(true), Some(by)) if by > bx => {
                count += 1;
                let arrived = v.arrived?;
                first = Some(first.map_or(arrived, |f: i64| f.min(arrived)));
            }
            (_, None) if v.arrived.is_some_and(|a| a < bx) => {}
            _ => return None,
        }
    }
    Some((count, first))
}

/// Families of every mix (ties, versions of unknown state, unknown build
/// or arrival times) place each version as reading every other member
/// does.
#[test]
fn each_version_is_placed_as_a_walk_of_its_whole_family_places_it() {
    // A small linear congruential generator: the same families every run.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = |below: u64| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) % below
    };
    let mut placed = 0;
    let mut unknown = 0;
    for _ in 0..400 {
        let size = 1 + next(12) as usize;
        // Few distinct times, so ties and equal arrivals are common; rare
        // unknowns, so most families can be ordered.
        let rare = next(3) == 0;
        let versions: Vec<Version> = (0..size)
            .map(|_| Version {
                family: Some(("a", "r", "f")),
                available: if rare && next(6) == 0 {
                    None
                } else {
                    Some(true)
                },
                arrived: if rare && next(6) == 0 {
                    None
                } else {
                    Some(next(20) as i64)
                },
                built: if rare && next(6) == 0 {
                    None
                } else {
                    let span = if next(2) == 0 { 8 } else { 1000 };
                    Some(next(span) as i64)
                },
            })
            .collect();
        let members: Vec<usize> = (0..size).collect();
        let family = Family::new(&members, &versions);
        for &x in &members {
            let (Some(true), Some(bx)) = (versions[x].available, versions[x].built) else {
                continue;
            };
            let expected = newer_than_by_walk(x, bx, &members, &versions);
            assert_eq!(family.newer_than(bx), expected, "version {x} of {size}");
            if expected.is_some() {
                placed += 1;
            } else {
                unknown += 1;
            }
        }
    }
    // Both outcomes were tried, many times.
    assert!(
        placed > 200 && unknown > 200,
        "{placed} placed, {unknown} not"
    );
}
