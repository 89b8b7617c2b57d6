//! The reproducible `.tar.gz` bundle of an audit, beside it.

use std::fs;
use std::path::{Path, PathBuf};

use sha2::Digest;

use super::{HashingWriter, read_manifest};
use crate::error::{Error, Result};
use crate::inventory::sha256_file;
use crate::output::files_below;

/// The bundle's path for an audit directory: `<dir>.tar.gz` beside it.
pub fn bundle_path(destination: &Path) -> Result<PathBuf> {
    let name = destination
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| Error::input(format!("{}: no name for a bundle", destination.display())))?;
    Ok(destination.with_file_name(format!("{name}.tar.gz")))
}

/// Writes the directory `dir` as a reproducible `.tar.gz` (sorted entries,
/// fixed times and modes, entries under `name/`) into a temporary file
/// created exclusively beside `path` (never a name someone could have
/// planted). Written before the audit is moved into place, so a bundle that
/// cannot be written costs nothing; [`place_bundle`] moves it in after.
pub fn write_bundle_beside(dir: &Path, name: &str, path: &Path) -> Result<tempfile::NamedTempFile> {
    let parent = path
        .parent()
        .ok_or_else(|| Error::input(format!("{}: no directory for a bundle", path.display())))?;
    let temp = tempfile::Builder::new()
        .prefix(&crate::output::temporary_prefix(name))
        .tempfile_in(parent)
        .map_err(|e| Error::io(parent, e))?;
    let file = temp.reopen().map_err(|e| Error::io(temp.path(), e))?;
    let file = write_bundle(dir, name, std::io::BufWriter::new(file))
        .map_err(|e| Error::io(temp.path(), e))?;
    let file = file
        .into_inner()
        .map_err(|e| Error::io(temp.path(), e.into_error()))?;
    file.sync_all().map_err(|e| Error::io(temp.path(), e))?;
    Ok(temp)
}

/// Moves a bundle written by [`write_bundle_beside`] to `path`: over the
/// file there only while it still hashes to `earlier` (the earlier audit's
/// own bundle, checked before the run), else only where nothing is. When
/// it cannot be placed the temporary file is kept and the error names it.
pub fn place_bundle(
    temp: tempfile::NamedTempFile,
    path: &Path,
    earlier: Option<&str>,
) -> Result<PathBuf> {
    let present = match fs::symlink_metadata(path) {
        Ok(_) => true,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(kept_bundle(temp, path, &e.to_string())),
    };
    let placed = match (present, earlier) {
        (false, _) => temp
            .persist_noclobber(path)
            .map_err(|e| (e.file, e.error.to_string())),
        (true, Some(earlier))
            if fs::symlink_metadata(path).is_ok_and(|m| m.is_file())
                && sha256_file(path).ok().as_deref() == Some(earlier) =>
        {
            temp.persist(path)
                .map_err(|e| (e.file, e.error.to_string()))
        }
        (true, _) => Err((
            temp,
            "a file appeared there during the run that is not the earlier audit's bundle"
                .to_string(),
        )),
    };
    match placed {
        Ok(_) => Ok(path.to_path_buf()),
        Err((temp, why)) => Err(kept_bundle(temp, path, &why)),
    }
}

fn kept_bundle(temp: tempfile::NamedTempFile, path: &Path, why: &str) -> Error {
    // Kept under a name of its own (a temporary's would be cleaned up by
    // the next run); a fresh name for each attempt.
    let kept = 'placed: {
        let mut temp = temp;
        for _ in 0..4 {
            let target = crate::output::kept_path(path);
            match temp.persist_noclobber(&target) {
                Ok(_) => break 'placed target.display().to_string(),
                Err(e) => temp = e.file,
            }
        }
        match temp.keep() {
            Ok((_, at)) => format!(
                "{} (a temporary name the next run into this place removes: move it)",
                at.display()
            ),
            Err(e) => format!("nowhere ({})", e.error),
        }
    };
    Error::input(format!(
        "{}: bundle not placed ({why}); the audit is in place and its bundle is kept at {kept}",
        path.display()
    ))
}

/// A file at a bundle's place may be replaced only when it is, byte for
/// byte, the bundle of the earlier audit about to be replaced (bundles are
/// reproducible: the earlier audit is its record). Anything else, a user's
/// own `tar czf` of the directory included, is refused. Returns the earlier
/// bundle's sha256 (None: there is none).
pub fn check_bundle_replaceable(path: &Path, earlier: &Path, name: &str) -> Result<Option<String>> {
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path, e)),
    };
    if meta.is_file() && read_manifest(earlier).is_ok() {
        let present = sha256_file(path).ok();
        if present.is_some() && present == bundle_sha256(earlier, name).ok() {
            return Ok(present);
        }
    }
    Err(Error::input(format!(
        "{}: exists and is not the bundle amiaudit wrote of the audit at `{}`; move it away or drop --bundle",
        path.display(),
        earlier.display()
    )))
}

/// sha256 of the bundle `dir` would make, without writing it.
fn bundle_sha256(dir: &Path, name: &str) -> Result<String> {
    let hashing = HashingWriter::new(std::io::sink());
    let done = write_bundle(dir, name, hashing).map_err(|e| Error::io(dir, e))?;
    Ok(hex::encode(done.hasher.finalize()))
}

fn write_bundle<W: std::io::Write>(dir: &Path, name: &str, out: W) -> std::io::Result<W> {
    let gz = flate2::GzBuilder::new()
        .mtime(0)
        .write(out, flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    let rels = files_below(dir).map_err(|e| std::io::Error::other(e.to_string()))?;
    // A staged audit still holds the staging marker, which is not part of it.
    for rel in rels.into_iter().filter(|r| r != crate::output::MARKER) {
        // Regular files only, read without following a link (an audit
        // holds nothing else; a link could be a pipe or a device).
        let path = dir.join(&rel);
        let (file, len) = crate::error::open_regular_file(&path, "not found")
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        if !fs::symlink_metadata(&path)?.is_file() {
            return Err(std::io::Error::other(format!(
                "{}: a link, not a file amiaudit wrote",
                path.display()
            )));
        }
        let mut data = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        std::io::Read::read_to_end(&mut std::io::Read::take(file, len), &mut data)?;
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_cksum();
        tar.append_data(&mut header, format!("{name}/{rel}"), data.as_slice())?;
    }
    let gz = tar.into_inner()?;
    gz.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn staged(dir: &Path, at: &Path) -> tempfile::NamedTempFile {
        write_bundle_beside(dir, "audit", at).unwrap()
    }

    #[test]
    fn a_bundle_is_placed_only_where_nothing_or_the_earlier_bundle_is() {
        let root = tempfile::tempdir().unwrap();
        let audit = root.path().join("audit");
        fs::create_dir(&audit).unwrap();
        fs::write(audit.join("a.txt"), "a").unwrap();
        let at = root.path().join("audit.tar.gz");

        // Nothing there: placed.
        place_bundle(staged(&audit, &at), &at, None).unwrap();
        let earlier = sha256_file(&at).unwrap();

        // The earlier bundle there: replaced.
        fs::write(audit.join("a.txt"), "b").unwrap();
        place_bundle(staged(&audit, &at), &at, Some(&earlier)).unwrap();
        assert_ne!(sha256_file(&at).unwrap(), earlier);

        // Something else appeared during the run: left alone, ours kept.
        fs::write(&at, "a user's file").unwrap();
        let err = place_bundle(staged(&audit, &at), &at, Some(&earlier))
            .unwrap_err()
            .to_string();
        assert_eq!(fs::read(&at).unwrap(), b"a user's file");
        let kept = err.rsplit("kept at ").next().unwrap();
        assert!(Path::new(kept).is_file(), "{err}");
        // A file appearing where none was: left alone too.
        let fresh = root.path().join("fresh.tar.gz");
        let temp = staged(&audit, &fresh);
        fs::write(&fresh, "planted").unwrap();
        assert!(place_bundle(temp, &fresh, None).is_err());
        assert_eq!(fs::read(&fresh).unwrap(), b"planted");
    }
}
