//! ARCHITECTURE.md's layers, enforced: every `crate::` path (and `super::`
//! from a module's root file) in `src/` outside tests points to a module
//! listed after its own, so the document and the code cannot drift apart
//! and no import cycle can come back.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `Layers:` paragraph of ARCHITECTURE.md, top first.
fn layers() -> Vec<String> {
    let text = std::fs::read_to_string(repo().join("ARCHITECTURE.md")).unwrap();
    let start = text
        .find("\nLayers:")
        .expect("a `Layers:` paragraph in ARCHITECTURE.md");
    let paragraph = text[start..].split("\n\n").next().unwrap();
    paragraph
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// The crate's top-level modules, from lib.rs.
fn modules() -> BTreeSet<String> {
    let lib = std::fs::read_to_string(repo().join("src/lib.rs")).unwrap();
    lib.lines()
        .filter_map(|l| {
            l.strip_prefix("pub mod ")
                .or_else(|| l.strip_prefix("mod "))
        })
        .map(|l| l.trim_end_matches(';').to_string())
        .collect()
}

/// The top-level modules named after `crate::` in `text` (grouped imports
/// `crate::{a, b::c}` included).
fn referenced(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in text.match_indices("crate::") {
        let rest = &text[i + "crate::".len()..];
        let names: Vec<&str> = match rest.strip_prefix('{') {
            Some(group) => {
                let group = &group[..group.find('}').unwrap_or(group.len())];
                group.split(',').collect()
            }
            None => vec![rest],
        };
        for name in names {
            let name: String = name
                .trim()
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.insert(name);
            }
        }
    }
    out
}

/// Each module's file texts, without their test modules.
fn sources() -> BTreeMap<String, Vec<(PathBuf, String)>> {
    let mut out: BTreeMap<String, Vec<(PathBuf, String)>> = BTreeMap::new();
    let src = repo().join("src");
    for entry in walkdir::WalkDir::new(&src) {
        let entry = entry.unwrap();
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let rel = path.strip_prefix(&src).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let top = top.trim_end_matches(".rs").to_string();
        if ["lib", "main", "cli"].contains(&top.as_str()) {
            continue;
        }
        let text = std::fs::read_to_string(path).unwrap();
        let text = text.split("#[cfg(test)]").next().unwrap().to_string();
        out.entry(top).or_default().push((rel.to_path_buf(), text));
    }
    out
}

fn is_module_root(rel: &Path) -> bool {
    rel.components().count() == 1 || rel.ends_with("mod.rs")
}

#[test]
fn dependencies_point_down_architecture_mds_layers() {
    let layers = layers();
    let rank: BTreeMap<&str, usize> = layers
        .iter()
        .enumerate()
        .map(|(i, m)| (m.as_str(), i))
        .collect();
    let modules = modules();
    let unlisted: Vec<&String> = modules
        .iter()
        .filter(|m| !rank.contains_key(m.as_str()))
        .collect();
    assert!(
        unlisted.is_empty(),
        "modules missing from ARCHITECTURE.md's layers: {unlisted:?}"
    );
    let mut upward = Vec::new();
    for (module, files) in sources() {
        for (rel, text) in files {
            let mut uses = referenced(&text);
            // `super::x` in a module's root file is `crate::x`.
            if is_module_root(&rel) {
                uses.extend(referenced(&text.replace("super::", "crate::")));
            }
            for used in uses
                .iter()
                .filter(|u| **u != module && modules.contains(*u))
            {
                if rank[used.as_str()] < rank[module.as_str()] {
                    upward.push(format!(
                        "{} uses `{used}`, a layer above `{module}`",
                        rel.display()
                    ));
                }
            }
        }
    }
    assert!(
        upward.is_empty(),
        "arrows up ARCHITECTURE.md's layers:\n{}",
        upward.join("\n")
    );
}

#[test]
fn grouped_and_plain_paths_are_both_read() {
    let found = referenced("use crate::{config, inventory::x, synth};\nlet a = crate::aws::X;");
    assert_eq!(
        found,
        ["aws", "config", "inventory", "synth"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    );
}
