//! What a destination holds, and whether amiaudit may write there.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use crate::error::{Error, Result};

use super::*;

/// Refuses a destination inside an output of any of `kinds` (an ancestor
/// directory that is one): that output would hold files its manifest does
/// not list, and stop verifying. Replacing an output in place is the
/// destination itself, not an ancestor.
pub fn refuse_nested(destination: &Path, kind: &Kind, kinds: &[&Kind]) -> Result<()> {
    // The ancestors as the file system has them: the longest part of the
    // path that exists, resolved (`..`, links), and everything above it;
    // the parts that do not exist yet cannot be outputs.
    let joined = joined_to_cwd(destination)?;
    let Some(existing) = joined.ancestors().find(|a| fs::symlink_metadata(a).is_ok()) else {
        return Ok(());
    };
    let resolved = existing
        .canonicalize()
        .map_err(|e| Error::io(existing, e))?;
    // The destination itself may be replaced in place: only what is above it.
    let skip = usize::from(existing == joined.as_path());
    for ancestor in resolved.ancestors().skip(skip) {
        if !ancestor.is_dir() {
            continue;
        }
        if let Some(outer) = kinds.iter().find(|k| (k.listed)(ancestor).is_ok()) {
            return Err(Error::input(format!(
                "{}: lies inside the amiaudit {} at `{}`, which would no longer verify; write the {} beside it",
                destination.display(),
                outer.noun,
                ancestor.display(),
                kind.noun
            )));
        }
    }
    Ok(())
}

/// The destination must be absent, an empty directory, or an earlier
/// output of this kind that holds only the files its manifest lists, each
/// a regular file unchanged since it was written, and only the
/// directories they need; returns those files (empty when there is nothing
/// to replace).
pub(super) fn check_destination(destination: &Path, kind: &Kind) -> Result<Listed> {
    let refuse = |why: String| {
        Err(Error::input(format!(
            "{}: {why}; amiaudit writes only into a new or empty directory or over its own earlier {}",
            destination.display(),
            kind.noun
        )))
    };
    let meta = match fs::symlink_metadata(destination) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Listed::new()),
        Err(e) => return Err(Error::io(destination, e)),
    };
    if meta.file_type().is_symlink() {
        return refuse("is a symbolic link".to_string());
    }
    if !meta.is_dir() {
        return refuse("is a file, not a directory".to_string());
    }
    let (present, dirs) = entries_below(destination)?;
    if present.is_empty() && dirs.is_empty() {
        return Ok(Listed::new());
    }
    let listed = match (kind.listed)(destination) {
        Ok(listed) => listed,
        Err(e) => {
            return refuse(format!(
                "is not empty and is not an earlier amiaudit {} ({}; e.g. it holds `{}`)",
                kind.noun,
                e,
                present.iter().next().map(String::as_str).unwrap_or("")
            ));
        }
    };
    if let Some(bad) = listed.keys().find(|p| !is_plain_relative(p)) {
        return refuse(format!(
            "its manifest lists `{}`, which is not a plain path inside it",
            bad.escape_debug()
        ));
    }
    if let Err(e) = (kind.consistent)(destination) {
        return refuse(format!("is an earlier amiaudit {} but {e}", kind.noun));
    }
    let foreign: Vec<&String> = present
        .iter()
        .filter(|p| !listed.contains_key(*p))
        .collect();
    if let Some(first) = foreign.first() {
        return refuse(format!(
            "holds {} file(s) amiaudit did not write, e.g. `{}`",
            foreign.len(),
            first.escape_debug()
        ));
    }
    if let Some(dir) = dirs.iter().find(|d| listed.contains_key(*d)) {
        return refuse(format!(
            "its manifest lists `{}` as a file, but it is a directory",
            dir.escape_debug()
        ));
    }
    let needed = listed_parents(&listed);
    if let Some(dir) = dirs.iter().find(|d| !needed.contains(*d)) {
        return refuse(format!(
            "holds a directory amiaudit did not make, `{}`",
            dir.escape_debug()
        ));
    }
    for (rel, sha) in &listed {
        let path = destination.join(rel);
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        // amiaudit writes regular files only: a link or anything else at a
        // listed name was put there by someone else.
        let special = !meta.is_file();
        let changed = meta.is_file()
            && sha
                .as_ref()
                .is_some_and(|sha| sha256_file(&path).ok().as_ref() != Some(sha));
        if special || changed {
            return refuse(format!(
                "`{}` is not the file amiaudit wrote there (edited or replaced since); move it out first",
                rel.escape_debug()
            ));
        }
    }
    Ok(listed)
}

/// The directories the listed files need: every parent of each, relative.
pub(super) fn listed_parents(listed: &Listed) -> BTreeSet<String> {
    listed
        .keys()
        .flat_map(|rel| {
            Path::new(rel)
                .ancestors()
                .skip(1)
                .filter(|a| !a.as_os_str().is_empty())
                .map(|a| a.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Hex sha256 of a regular file, streamed.
pub fn sha256_file(path: &Path) -> Result<String> {
    use sha2::Digest;
    let (file, len) = crate::error::open_regular_file(path, "not found")?;
    let mut hasher = sha2::Sha256::new();
    std::io::copy(&mut std::io::Read::take(file, len), &mut hasher)
        .map_err(|e| Error::io(path, e))?;
    Ok(hex::encode(hasher.finalize()))
}

/// Every file below `dir` (symbolic links counted as files, never
/// followed), as sorted relative paths with `/` separators.
pub fn files_below(dir: &Path) -> Result<BTreeSet<String>> {
    entries_below(dir).map(|(files, _)| files)
}

/// The files (links counted as files) and the directories below `dir`, in
/// one walk that never follows links, as relative paths with `/`
/// separators.
fn entries_below(dir: &Path) -> Result<(BTreeSet<String>, BTreeSet<String>)> {
    let (mut files, mut dirs) = (BTreeSet::new(), BTreeSet::new());
    for entry in walkdir::WalkDir::new(dir).follow_links(false).min_depth(1) {
        let entry = entry.map_err(|e| {
            Error::input(format!(
                "{}: cannot read ({e})",
                e.path().unwrap_or(dir).display()
            ))
        })?;
        let rel = entry.path().strip_prefix(dir).unwrap_or(entry.path());
        let rel = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        if entry.file_type().is_dir() {
            dirs.insert(rel);
        } else {
            files.insert(rel);
        }
    }
    Ok((files, dirs))
}
