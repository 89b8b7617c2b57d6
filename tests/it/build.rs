//! The README's two commands share one build: every package the binary
//! needs is compiled with the same features for the tests, so the test
//! command reuses what `cargo run` built (a divergence rebuilds that package
//! and everything above it; polars-plan alone drags a minute of polars).
use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use super::support::*;

/// Each package of the tree over `edges`, with the feature sets it is built
/// with (one per build: a package built for build scripts may differ).
fn features_by_package(edges: &str) -> BTreeMap<String, BTreeSet<String>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let out = Command::new(cargo)
        .args(["tree", "--locked", "--offline", "--prefix", "none"])
        .args(["--format", "{p}|{f}", "--edges", edges])
        .current_dir(repo())
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "cargo tree --edges {edges}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut packages: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let line = line.trim_end().trim_end_matches(" (*)");
        let (package, features) = line.split_once('|').expect("{p}|{f}");
        packages
            .entry(package.to_string())
            .or_default()
            .insert(features.to_string());
    }
    packages
}

#[test]
fn tests_build_every_dependency_of_cargo_run_with_the_same_features() {
    let run = features_by_package("normal,build");
    let test = features_by_package("normal,build,dev");
    assert!(
        run.keys().any(|p| p.starts_with("polars-plan ")),
        "cargo tree lists the binary's dependencies: {run:?}"
    );
    let diverging: Vec<String> = run
        .iter()
        .filter(|(package, features)| test.get(*package) != Some(*features))
        .map(|(package, features)| {
            format!(
                "{package}: cargo run builds {features:?}, the tests {:?}",
                test.get(package)
            )
        })
        .collect();
    assert!(
        diverging.is_empty(),
        "the test build adds features, so it would compile these (and all above them) twice; \
         ask for the features in Cargo.toml's [dependencies] too:\n{}",
        diverging.join("\n")
    );
}
