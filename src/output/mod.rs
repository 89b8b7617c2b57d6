//! Output directories written all at once, and only over amiaudit's own.
//!
//! A [`Staging`] is a fresh directory beside the destination, written in
//! full and then moved into place; until then whatever the destination held
//! stays intact, and a failure (or Ctrl-C, or a kill) leaves it untouched.
//! The destination must be absent, empty, or an earlier output of the same
//! kind that holds nothing but what its manifest lists: anything else is
//! refused, so amiaudit never removes a file it did not write. A lock file
//! beside the destination makes a second writer fail at once with a clear
//! message instead of interleaving.
//!
//! The destination is checked when the run starts and again at the swap;
//! after the swap only the files the earlier output's manifest lists are
//! removed, and anything else found there (a file added during the run) is
//! kept, with the earlier output, under a name that says so. No output may
//! be written inside another amiaudit output (an audit, an inventory, a
//! diff): that one would stop verifying.
//!
//! A listed file whose bytes no longer match its manifest (someone edited
//! a report), a directory a manifest names as a file, or a directory no
//! listed file needs is not amiaudit's to remove: found before the run it
//! is refused, found at the swap it is kept.
//!
//! **Invariant:** the only paths this module removes are its own staging
//! directories (marked inside), directories it created for the
//! destination's parent in a run that did not commit, and the files an
//! earlier output's manifest lists, once it has checked they are plain
//! paths inside it, regular files, and (where the manifest gives a sha256)
//! unchanged, with the directories that held them once empty.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

mod destination;
pub mod file;
mod lock;

use destination::check_destination;
pub use destination::{files_below, refuse_nested, sha256_file};
use lock::{Lock, lock_beside, swap};

/// Names a staging directory carries inside, so a stale one can be told
/// from anything a user keeps (removed at the commit: never part of an
/// output).
pub const MARKER: &str = ".amiaudit-staging";

/// The files an output's manifest lists (relative paths, itself included),
/// each with the sha256 it records for it (None: it records none).
pub type Listed = BTreeMap<String, Option<String>>;

/// What kind of output a directory holds, and how to recognise an earlier
/// one: `listed` reads its manifest and returns every file it lists, or
/// says why it is not one; `consistent` says why an earlier one may not be
/// replaced even so (its manifest edited: the user's now).
pub struct Kind {
    pub noun: &'static str,
    pub listed: fn(&Path) -> Result<Listed>,
    pub consistent: fn(&Path) -> Result<()>,
}

/// For kinds whose manifest says nothing to check beyond its files.
pub fn always_consistent(_: &Path) -> Result<()> {
    Ok(())
}
/// A directory being written, moved into place by [`Staging::commit`].
#[derive(Debug)]
pub struct Staging {
    destination: PathBuf,
    staging: PathBuf,
    listed: fn(&Path) -> Result<Listed>,
    consistent: fn(&Path) -> Result<()>,
    noun: &'static str,
    lock: Option<Lock>,
    /// Parents of the destination this run created (outermost first),
    /// removed again if it does not commit.
    created: Vec<PathBuf>,
    committed: bool,
}

/// What a commit did.
#[derive(Debug)]
pub struct Committed {
    /// The output, in place.
    pub path: PathBuf,
    /// Where the earlier output was kept because it held files amiaudit did
    /// not write by the time it was replaced (None: it was removed whole).
    pub kept: Option<PathBuf>,
}

pub use crate::paths::is_plain_relative;

/// `path`, relative ones joined to the working directory (lexically).
fn joined_to_cwd(path: &Path) -> Result<PathBuf> {
    Ok(if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| Error::io(path, e))?
            .join(path)
    })
}

/// The destination as an absolute path with its parent resolved (the
/// destination itself need not exist; missing parents are created when
/// `create_parents`, else an error).
pub fn absolute(path: &Path, create_parents: bool) -> Result<PathBuf> {
    absolute_creating(path, create_parents).map(|(path, _)| path)
}

/// [`absolute`], also returning the directories it created, outermost
/// first.
fn absolute_creating(path: &Path, create_parents: bool) -> Result<(PathBuf, Vec<PathBuf>)> {
    let joined = joined_to_cwd(path)?;
    // `..` and `.` are resolved on the parent, which must exist.
    let normal: PathBuf = joined.components().collect();
    let name = normal.file_name().map(|n| n.to_os_string());
    let parent = normal.parent().map(Path::to_path_buf);
    match (parent, name) {
        (Some(parent), Some(name)) if !matches!(name.to_str(), Some("." | "..")) => {
            let mut created = Vec::new();
            if create_parents {
                let missing: Vec<&Path> = parent
                    .ancestors()
                    .take_while(|a| fs::symlink_metadata(a).is_err())
                    .collect();
                for dir in missing.into_iter().rev() {
                    match fs::create_dir(dir) {
                        Ok(()) => created.push(dir.to_path_buf()),
                        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                        Err(e) => {
                            remove_created(&created);
                            return Err(Error::io(dir, e));
                        }
                    }
                }
            }
            let parent = parent.canonicalize().map_err(|e| {
                remove_created(&created);
                Error::io(&parent, e)
            })?;
            // `new/../out` made `new` on the way: not a parent of the
            // destination, so it goes at once.
            let (created, stray): (Vec<PathBuf>, Vec<PathBuf>) = created
                .into_iter()
                .partition(|d| d.canonicalize().is_ok_and(|d| parent.starts_with(d)));
            remove_created(&stray);
            Ok((parent.join(name), created))
        }
        _ => Ok((
            path.canonicalize().map_err(|e| Error::io(path, e))?,
            Vec::new(),
        )),
    }
}

impl Staging {
    /// Checks `destination` (and that no ancestor of it is an output of any
    /// of `kinds`), takes the lock beside it, removes stale staging
    /// directories of earlier runs, and creates a fresh one.
    pub fn begin(destination: &Path, kind: &Kind, kinds: &[&Kind]) -> Result<Staging> {
        refuse_nested(destination, kind, kinds)?;
        let (destination, created) = absolute_creating(destination, true)?;
        // Until the Staging exists, a failure removes what was created here.
        let undo = |e: Error| {
            remove_created(&created);
            e
        };
        let (parent, name) = match (destination.parent(), destination.file_name()) {
            (Some(p), Some(n)) => (p.to_path_buf(), n.to_string_lossy().into_owned()),
            _ => {
                return Err(undo(Error::input(format!(
                    "{}: cannot write an {} over the root of the file system",
                    destination.display(),
                    kind.noun
                ))));
            }
        };
        let lock_path = parent.join(format!(".{name}.amiaudit-lock"));
        let file = lock_beside(&lock_path, &destination).map_err(undo)?;
        let mut staging = Staging {
            destination,
            staging: PathBuf::new(),
            listed: kind.listed,
            consistent: kind.consistent,
            noun: kind.noun,
            lock: Some(Lock {
                path: lock_path,
                _file: file,
            }),
            created,
            committed: false,
        };
        // From here on, dropping `staging` undoes the run.
        check_destination(&staging.destination, kind)?;
        remove_stale(&parent, &name)?;
        // The lock is held: pid and time make the name unique enough.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = parent.join(format!(
            ".{name}.amiaudit-staging-{}-{nanos:08x}",
            std::process::id()
        ));
        fs::create_dir(&dir).map_err(|e| Error::io(&dir, e))?;
        staging.staging = dir;
        fs::write(staging.staging.join(MARKER), b"").map_err(|e| Error::io(&staging.staging, e))?;
        Ok(staging)
    }

    /// Where to write.
    pub fn dir(&self) -> &Path {
        &self.staging
    }

    /// The final place, absolute.
    pub fn destination(&self) -> &Path {
        &self.destination
    }

    /// Moves the written directory into place. The destination is checked
    /// again first (it may have changed while the output was written); the
    /// earlier output, if any, is swapped out and its listed files removed.
    /// Whatever else it held by then is kept, under `<name>.amiaudit-kept-*`
    /// beside the destination.
    pub fn commit(mut self) -> Result<Committed> {
        let kind = Kind {
            noun: self.noun,
            listed: self.listed,
            consistent: self.consistent,
        };
        let listed = check_destination(&self.destination, &kind)?;
        let marker = self.staging.join(MARKER);
        fs::remove_file(&marker).map_err(|e| Error::io(&marker, e))?;
        let mut kept = None;
        if fs::symlink_metadata(&self.destination).is_ok() {
            swap(&self.staging, &self.destination)?;
            // The staging path now holds the earlier output.
            self.committed = true;
            kept = remove_listed(&self.staging, &listed, &self.destination);
        } else {
            fs::rename(&self.staging, &self.destination)
                .map_err(|e| Error::io(&self.destination, e))?;
        }
        self.committed = true;
        Ok(Committed {
            path: self.destination.clone(),
            kept,
        })
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        if self.staging.join(MARKER).is_file() {
            // Ours (the marker says so); a failed write leaves nothing behind.
            let _ = fs::remove_dir_all(&self.staging);
        }
        // The lock file lives in the parent: released first, so parents
        // this run created can go too (only if empty).
        drop(self.lock.take());
        remove_created(&self.created);
    }
}

/// Removes directories created for a destination's parent, innermost
/// first, each only if empty (never anything put there meanwhile).
fn remove_created(created: &[PathBuf]) {
    for dir in created.iter().rev() {
        let _ = fs::remove_dir(dir);
    }
}

/// Staging directories and temporary files of earlier runs that died
/// (marked or named so, and not locked: the caller holds the lock).
fn remove_stale(parent: &Path, name: &str) -> Result<()> {
    let staging = format!(".{name}.amiaudit-staging-");
    let temporary = temporary_prefix(name);
    let entries = fs::read_dir(parent).map_err(|e| Error::io(parent, e))?;
    for entry in entries.flatten() {
        let path = entry.path();
        let file_name = entry.file_name().to_string_lossy().into_owned();
        let meta = fs::symlink_metadata(&path);
        if file_name.starts_with(&staging)
            && meta.as_ref().is_ok_and(|m| m.is_dir())
            && path.join(MARKER).is_file()
        {
            fs::remove_dir_all(&path).map_err(|e| Error::io(&path, e))?;
        } else if file_name.starts_with(&temporary) && meta.is_ok_and(|m| m.is_file()) {
            fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
        }
    }
    Ok(())
}

/// A fresh `<path>.amiaudit-kept-<nanos>` beside `path`: where something
/// amiaudit did not write (or could not place) is kept instead of removed.
pub fn kept_path(path: &Path) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!("{name}.amiaudit-kept-{nanos}"))
}

/// The name a temporary file written beside the destination `name` (a
/// bundle) starts with: one left by a run that died is removed by the
/// next, under the lock.
pub fn temporary_prefix(name: &str) -> String {
    format!(".{name}.amiaudit-tmp-")
}

/// Removes the files `listed` (relative, checked plain) from the earlier
/// output now at `old` where each is still what its manifest says (a
/// regular file, unchanged where a sha256 is recorded), then the
/// directories that held them once empty. The audit is already in place,
/// so nothing here fails: anything left (a file added or edited while the
/// run went on, a directory no listed file needs, a file that would not
/// go) is kept, the directory renamed to `<destination>.amiaudit-kept-<nanos>`
/// and that path returned.
fn remove_listed(old: &Path, listed: &Listed, destination: &Path) -> Option<PathBuf> {
    for (rel, sha) in listed {
        let path = old.join(rel);
        let removable = match fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_file() => sha
                .as_ref()
                .is_none_or(|sha| sha256_file(&path).ok().as_ref() == Some(sha)),
            _ => false,
        };
        if removable {
            let _ = fs::remove_file(&path);
        }
    }
    // Deepest first: a directory goes only once it is empty.
    let mut dirs: Vec<PathBuf> = destination::listed_parents(listed)
        .iter()
        .map(|rel| old.join(rel))
        .collect();
    dirs.push(old.to_path_buf());
    dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    for dir in dirs {
        // Not empty: something amiaudit did not write is still there.
        let _ = fs::remove_dir(&dir);
    }
    if fs::symlink_metadata(old).is_err() {
        return None;
    }
    let kept = kept_path(destination);
    // Where it cannot be renamed, it stays under the staging name.
    Some(if fs::rename(old, &kept).is_ok() {
        kept
    } else {
        old.to_path_buf()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A kind whose manifest is `list`, one relative path a line.
    const LISTED: Kind = Kind {
        noun: "thing",
        consistent: always_consistent,
        listed: |dir| {
            let text = fs::read_to_string(dir.join("list")).map_err(|e| Error::io(dir, e))?;
            Ok(text
                .lines()
                .map(|l| (l.to_string(), None))
                .chain([("list".to_string(), None)])
                .collect())
        },
    };

    fn write(dir: &Path, files: &[(&str, &str)]) {
        for (rel, text) in files {
            let path = dir.join(rel);
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{e}"));
            }
            fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
        }
    }

    #[test]
    fn a_file_added_while_the_run_goes_on_stops_the_commit() {
        let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let out = root.path().join("out");
        write(&out, &[("list", "a\nsub/b"), ("a", "1"), ("sub/b", "2")]);
        let staging = Staging::begin(&out, &LISTED, &[]).unwrap_or_else(|e| panic!("{e}"));
        write(staging.dir(), &[("list", "a"), ("a", "new")]);
        // Someone keeps a note in the earlier output meanwhile.
        write(&out, &[("notes.txt", "mine")]);
        let err = staging
            .commit()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("did not write"), "{err}");
        assert_eq!(fs::read_to_string(out.join("a")).ok().as_deref(), Some("1"));
        assert_eq!(
            fs::read_to_string(out.join("notes.txt")).ok().as_deref(),
            Some("mine")
        );
        // Nothing of the failed run is left beside it.
        let left: Vec<_> = fs::read_dir(root.path())
            .unwrap_or_else(|e| panic!("{e}"))
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(left, ["out"]);
    }

    #[test]
    fn after_the_swap_only_listed_files_go_and_anything_else_is_kept() {
        let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let old = root.path().join(".out.staging");
        write(
            &old,
            &[
                ("list", "a\nsub/b"),
                ("a", "1"),
                ("sub/b", "2"),
                ("sub/late.txt", "mine"),
            ],
        );
        let listed: Listed = ["a", "sub/b", "list"].map(|f| (f.to_string(), None)).into();
        let kept = remove_listed(&old, &listed, &root.path().join("out"))
            .unwrap_or_else(|| panic!("the late file is kept"));
        assert!(kept.to_string_lossy().contains("out.amiaudit-kept-"));
        assert_eq!(
            fs::read_to_string(kept.join("sub/late.txt"))
                .ok()
                .as_deref(),
            Some("mine")
        );
        assert!(!kept.join("a").exists() && !kept.join("sub/b").exists());
        // Only listed files: the directory goes whole.
        write(&old, &[("list", "a"), ("a", "1")]);
        let listed: Listed = ["a", "list"].map(|f| (f.to_string(), None)).into();
        assert_eq!(remove_listed(&old, &listed, &root.path().join("out")), None);
        assert!(!old.exists());
        // An edited file and an empty directory someone made: kept.
        write(&old, &[("list", "a"), ("a", "edited")]);
        fs::create_dir_all(old.join("mine")).unwrap_or_else(|e| panic!("{e}"));
        let listed: Listed = [
            ("a".to_string(), Some(sha256_hex(b"1"))),
            ("list".to_string(), None),
        ]
        .into();
        let kept = remove_listed(&old, &listed, &root.path().join("out"))
            .unwrap_or_else(|| panic!("the edited file is kept"));
        assert_eq!(
            fs::read(kept.join("a")).ok().as_deref(),
            Some(&b"edited"[..])
        );
        assert!(kept.join("mine").is_dir() && !kept.join("list").exists());
    }

    fn sha256_hex(bytes: &[u8]) -> String {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(bytes))
    }

    #[test]
    fn an_earlier_output_with_what_amiaudit_did_not_write_is_refused_before_work() {
        let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let out = root.path().join("out");
        // A directory the manifest names as a file.
        write(&out, &[("list", "a\nd"), ("a", "1")]);
        fs::create_dir(out.join("d")).unwrap_or_else(|e| panic!("{e}"));
        let refusal = |out: &Path| {
            Staging::begin(out, &LISTED, &[])
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        assert!(
            refusal(&out).contains("lists `d` as a file"),
            "{}",
            refusal(&out)
        );
        // An empty directory nothing listed needs.
        fs::remove_dir(out.join("d")).unwrap_or_else(|e| panic!("{e}"));
        fs::create_dir(out.join("mine")).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            refusal(&out).contains("directory amiaudit did not make, `mine`"),
            "{}",
            refusal(&out)
        );
        assert!(out.join("mine").is_dir());
    }

    #[test]
    fn parents_created_for_a_run_that_does_not_commit_are_removed() {
        let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let out = root.path().join("new/deeper/out");
        let staging = Staging::begin(&out, &LISTED, &[]).unwrap_or_else(|e| panic!("{e}"));
        assert!(staging.dir().is_dir());
        drop(staging);
        assert!(!root.path().join("new").exists());
        // Committed: they stay.
        let staging = Staging::begin(&out, &LISTED, &[]).unwrap_or_else(|e| panic!("{e}"));
        write(staging.dir(), &[("list", "")]);
        staging.commit().unwrap_or_else(|e| panic!("{e}"));
        assert!(out.join("list").is_file());
    }

    #[test]
    fn no_output_is_written_inside_another() {
        let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let outer = root.path().join("outer");
        write(&outer, &[("list", "a"), ("a", "1")]);
        for inner in [outer.join("x"), outer.join("x").join("y")] {
            let err = Staging::begin(&inner, &LISTED, &[&LISTED])
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.contains("lies inside the amiaudit thing at"), "{err}");
            assert!(!inner.exists());
        }
    }
}
