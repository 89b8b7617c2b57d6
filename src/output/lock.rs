//! The lock beside a destination, and the swap that moves an output in.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The lock beside a destination; its file goes when it is released.
#[derive(Debug)]
pub(super) struct Lock {
    pub(super) path: PathBuf,
    pub(super) _file: fs::File,
}

impl Drop for Lock {
    fn drop(&mut self) {
        // Still held: any other writer gave up at once (try_lock), so the
        // file can go before the lock is released with it; only if the
        // path still names it (never a file put there since).
        use std::os::unix::fs::MetadataExt;
        let ours = match (self._file.metadata(), fs::symlink_metadata(&self.path)) {
            (Ok(held), Ok(now)) => held.ino() == now.ino() && held.dev() == now.dev(),
            _ => false,
        };
        if ours {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// What an amiaudit lock file holds, so one is told from a user's file of
/// the same name (which is refused, never truncated or removed).
const LOCK_TEXT: &[u8] = b"amiaudit lock\n";

/// Opens and locks the lock file, never through a link, never over a file
/// that is not an amiaudit lock. A lock taken on a file that another run
/// removed in the meantime is no lock: open again until the locked file is
/// the one at the path.
pub(super) fn lock_beside(lock_path: &Path, destination: &Path) -> Result<fs::File> {
    use std::io::{Read, Write};
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let not_ours = || {
        Error::input(format!(
            "{}: `{}` is in the way and is not an amiaudit lock (a link, or a file amiaudit did not write); move it away",
            destination.display(),
            lock_path.display()
        ))
    };
    for _ in 0..16 {
        // Made here (exclusively: never over anything), or amiaudit's own
        // from a run that died, opened without following a link.
        let (mut file, created) = match fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(lock_path)
        {
            Ok(file) => (file, true),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                match fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
                    .open(lock_path)
                {
                    Ok(file) => (file, false),
                    // Removed meanwhile (its run finished): again.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    // O_NOFOLLOW on a link.
                    Err(e) if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) => {
                        return Err(not_ours());
                    }
                    Err(e) => return Err(Error::io(lock_path, e)),
                }
            }
            Err(e) => return Err(Error::io(lock_path, e)),
        };
        let held = file.metadata().map_err(|e| Error::io(lock_path, e))?;
        if !held.is_file() || held.len() > LOCK_TEXT.len() as u64 {
            return Err(not_ours());
        }
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
        if created {
            file.write_all(LOCK_TEXT)
                .map_err(|e| Error::io(lock_path, e))?;
        } else {
            let mut text = Vec::new();
            file.read_to_end(&mut text)
                .map_err(|e| Error::io(lock_path, e))?;
            if text != LOCK_TEXT {
                return Err(not_ours());
            }
        }
        let current = fs::symlink_metadata(lock_path);
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
pub(super) fn swap(a: &Path, b: &Path) -> Result<()> {
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
