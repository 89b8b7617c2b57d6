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
        // file can go before the lock is released with it.
        let _ = fs::remove_file(&self.path);
    }
}

/// Opens and locks the lock file. A lock taken on a file that another run
/// removed in the meantime is no lock: open again until the locked file is
/// the one at the path.
pub(super) fn lock_beside(lock_path: &Path, destination: &Path) -> Result<fs::File> {
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
