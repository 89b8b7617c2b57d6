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
//! **Invariant:** the only paths this module removes are its own staging
//! directories (marked inside) and an earlier output it has just checked is
//! made only of files that output's manifest lists.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};

/// Names a staging directory carries inside, so a stale one can be told
/// from anything a user keeps.
const MARKER: &str = ".amiaudit-staging";

/// What kind of output a directory holds, and how to recognise an earlier
/// one: `listed` reads its manifest and returns every file it lists
/// (relative paths, itself included), or says why it is not one.
pub struct Kind {
    pub noun: &'static str,
    pub listed: fn(&Path) -> Result<BTreeSet<String>>,
}
/// A directory being written, moved into place by [`Staging::commit`].
#[derive(Debug)]
pub struct Staging {
    destination: PathBuf,
    staging: PathBuf,
    _lock: Lock,
    committed: bool,
}

/// The lock beside a destination; its file goes when it is released.
#[derive(Debug)]
struct Lock {
    path: PathBuf,
    _file: fs::File,
}

impl Drop for Lock {
    fn drop(&mut self) {
        // Still held: any other writer gave up at once (try_lock), so the
        // file can go before the lock is released with it.
        let _ = fs::remove_file(&self.path);
    }
}

/// Whether `rel` is a plain relative path inside a directory: no root, no
/// `..`, no `.`, not empty. Paths read from manifests must be this.
pub fn is_plain_relative(rel: &str) -> bool {
    let path = Path::new(rel);
    !rel.is_empty()
        && !rel.contains('\\')
        && path
            .components()
            .all(|c| matches!(c, Component::Normal(name) if !name.is_empty()))
}

/// The destination as an absolute path with its parent resolved (the
/// destination itself need not exist; missing parents are created when
/// `create_parents`, else an error).
pub fn absolute(path: &Path, create_parents: bool) -> Result<PathBuf> {
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| Error::io(path, e))?
            .join(path)
    };
    // `..` and `.` are resolved on the parent, which must exist.
    let normal: PathBuf = joined.components().collect();
    let name = normal.file_name().map(|n| n.to_os_string());
    let parent = normal.parent().map(Path::to_path_buf);
    match (parent, name) {
        (Some(parent), Some(name)) if !matches!(name.to_str(), Some("." | "..")) => {
            if create_parents {
                fs::create_dir_all(&parent).map_err(|e| Error::io(&parent, e))?;
            }
            let parent = parent.canonicalize().map_err(|e| Error::io(&parent, e))?;
            Ok(parent.join(name))
        }
        _ => path.canonicalize().map_err(|e| Error::io(path, e)),
    }
}

impl Staging {
    /// Checks `destination`, takes the lock beside it, removes stale
    /// staging directories of earlier runs, and creates a fresh one.
    pub fn begin(destination: &Path, kind: &Kind) -> Result<Staging> {
        let destination = absolute(destination, true)?;
        let (parent, name) = match (destination.parent(), destination.file_name()) {
            (Some(p), Some(n)) => (p.to_path_buf(), n.to_string_lossy().into_owned()),
            _ => {
                return Err(Error::input(format!(
                    "{}: cannot write an {} over the root of the file system",
                    destination.display(),
                    kind.noun
                )));
            }
        };
        let lock_path = parent.join(format!(".{name}.amiaudit-lock"));
        let file = lock_beside(&lock_path, &destination)?;
        let lock = Lock {
            path: lock_path,
            _file: file,
        };
        check_destination(&destination, kind)?;
        remove_stale(&parent, &name)?;
        // The lock is held: pid and time make the name unique enough.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let staging = parent.join(format!(
            ".{name}.amiaudit-staging-{}-{nanos:08x}",
            std::process::id()
        ));
        fs::create_dir(&staging).map_err(|e| Error::io(&staging, e))?;
        fs::write(staging.join(MARKER), b"").map_err(|e| Error::io(&staging, e))?;
        Ok(Staging {
            destination,
            staging,
            _lock: lock,
            committed: false,
        })
    }

    /// Where to write.
    pub fn dir(&self) -> &Path {
        &self.staging
    }

    /// The final place, absolute.
    pub fn destination(&self) -> &Path {
        &self.destination
    }

    /// Moves the written directory into place. The earlier output, if any,
    /// is swapped out and then removed (it was checked to hold only its own
    /// files); an empty directory is simply replaced.
    pub fn commit(mut self) -> Result<PathBuf> {
        let marker = self.staging.join(MARKER);
        fs::remove_file(&marker).map_err(|e| Error::io(&marker, e))?;
        if fs::symlink_metadata(&self.destination).is_ok() {
            swap(&self.staging, &self.destination)?;
            // The staging path now holds the earlier output.
            fs::remove_dir_all(&self.staging).map_err(|e| Error::io(&self.staging, e))?;
        } else {
            fs::rename(&self.staging, &self.destination)
                .map_err(|e| Error::io(&self.destination, e))?;
        }
        self.committed = true;
        Ok(self.destination.clone())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.committed && self.staging.join(MARKER).is_file() {
            // Ours (the marker says so); a failed write leaves nothing behind.
            let _ = fs::remove_dir_all(&self.staging);
        }
    }
}

/// Opens and locks the lock file. A lock taken on a file that another run
/// removed in the meantime is no lock: open again until the locked file is
/// the one at the path.
fn lock_beside(lock_path: &Path, destination: &Path) -> Result<fs::File> {
    use std::os::unix::fs::MetadataExt;
    for _ in 0..16 {
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(lock_path)
            .map_err(|e| Error::io(lock_path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(Error::input(format!(
                    "{}: another amiaudit is writing here (lock {}); wait for it to finish",
                    destination.display(),
                    lock_path.display()
                )));
            }
            Err(fs::TryLockError::Error(e)) => return Err(Error::io(lock_path, e)),
        }
        let held = file.metadata().map_err(|e| Error::io(lock_path, e))?;
        let current = fs::metadata(lock_path);
        if current.is_ok_and(|m| m.ino() == held.ino() && m.dev() == held.dev()) {
            return Ok(file);
        }
    }
    Err(Error::input(format!(
        "{}: the lock {} keeps changing; another amiaudit is writing here",
        destination.display(),
        lock_path.display()
    )))
}

/// Exchanges two paths atomically where the system can (Linux
/// `renameat2(RENAME_EXCHANGE)`), else in two renames.
fn swap(a: &Path, b: &Path) -> Result<()> {
    #[cfg(target_os = "linux")]
    {
        use rustix::fs::{CWD, RenameFlags, renameat_with};
        match renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE) {
            Ok(()) => return Ok(()),
            // Some file systems do not support it: fall back below.
            Err(e) if e == rustix::io::Errno::INVAL || e == rustix::io::Errno::NOSYS => {}
            Err(e) => return Err(Error::io(b, e.into())),
        }
    }
    let aside = a.with_extension("old");
    fs::rename(b, &aside).map_err(|e| Error::io(b, e))?;
    fs::rename(a, b).map_err(|e| Error::io(b, e))?;
    fs::rename(&aside, a).map_err(|e| Error::io(a, e))
}

/// Staging directories of earlier runs that died (marked, and not locked:
/// the caller holds the lock).
fn remove_stale(parent: &Path, name: &str) -> Result<()> {
    let prefix = format!(".{name}.amiaudit-staging-");
    let entries = fs::read_dir(parent).map_err(|e| Error::io(parent, e))?;
    for entry in entries.flatten() {
        let path = entry.path();
        let ours = entry.file_name().to_string_lossy().starts_with(&prefix)
            && fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir())
            && path.join(MARKER).is_file();
        if ours {
            fs::remove_dir_all(&path).map_err(|e| Error::io(&path, e))?;
        }
    }
    Ok(())
}

/// The destination must be absent, an empty directory, or an earlier
/// output of this kind that holds only the files its manifest lists.
fn check_destination(destination: &Path, kind: &Kind) -> Result<()> {
    let refuse = |why: String| {
        Err(Error::input(format!(
            "{}: {why}; amiaudit writes only into a new or empty directory or over its own earlier {}",
            destination.display(),
            kind.noun
        )))
    };
    let meta = match fs::symlink_metadata(destination) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(destination, e)),
    };
    if meta.file_type().is_symlink() {
        return refuse("is a symbolic link".to_string());
    }
    if !meta.is_dir() {
        return refuse("is a file, not a directory".to_string());
    }
    let present = files_below(destination)?;
    if present.is_empty() {
        return Ok(());
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
    if let Some(bad) = listed.iter().find(|p| !is_plain_relative(p)) {
        return refuse(format!(
            "its manifest lists `{}`, which is not a plain path inside it",
            bad.escape_debug()
        ));
    }
    let foreign: Vec<&String> = present.iter().filter(|p| !listed.contains(*p)).collect();
    if let Some(first) = foreign.first() {
        return refuse(format!(
            "holds {} file(s) amiaudit did not write, e.g. `{}`",
            foreign.len(),
            first.escape_debug()
        ));
    }
    Ok(())
}

/// Every file below `dir` (symbolic links counted as files, never
/// followed), as sorted relative paths with `/` separators.
pub fn files_below(dir: &Path) -> Result<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    for entry in walkdir::WalkDir::new(dir).follow_links(false).min_depth(1) {
        let entry = entry.map_err(|e| {
            Error::input(format!(
                "{}: cannot read ({e})",
                e.path().unwrap_or(dir).display()
            ))
        })?;
        if entry.file_type().is_dir() {
            continue;
        }
        let rel = entry.path().strip_prefix(dir).unwrap_or(entry.path());
        out.insert(
            rel.components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/"),
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_relative_paths_are_trusted() {
        for ok in ["findings.csv", "inventory/images.parquet", "a/b/c"] {
            assert!(is_plain_relative(ok), "{ok}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "./a",
            "a\\b",
            "a//b/..",
        ] {
            assert!(!is_plain_relative(bad), "{bad}");
        }
    }
}
