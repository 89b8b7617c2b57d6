//! One file of an output being written: streamed to disk, hashed as it is
//! written (the manifest's sha256 without reading gigabytes back), gzip'd
//! when asked (`audit --compress`: which files is `render`'s choice); and
//! how the readers of an audit open a file written either way.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use sha2::Digest as _;

use crate::error::{Error, MAX_INPUT_FILE_BYTES, Result, open_regular_file};

/// The gzip level: the fastest. These files are mostly repeated ids and
/// texts, so level 1 already shrinks them about tenfold; higher levels gain
/// a few percent for half again the CPU.
const LEVEL: u32 = 1;

type Hashed = HashingWriter<BufWriter<File>>;

enum Body {
    Plain(Hashed),
    Gzip(Box<GzEncoder<Hashed>>),
}

impl Write for Body {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Body::Plain(w) => w.write(buf),
            Body::Gzip(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Body::Plain(w) => w.flush(),
            Body::Gzip(w) => w.flush(),
        }
    }
}

/// A file of the audit being written. [`OutputFile::finish`] flushes it and
/// gives its path with the sha256 of its bytes on disk (compressed ones
/// when gzip'd: what `verify` hashes).
pub struct OutputFile {
    path: PathBuf,
    /// Buffered above the encoder and the hash: templates and serialisers
    /// write a few bytes at a time.
    body: BufWriter<Body>,
}

/// What a file `name` is called once gzip'd.
pub fn gzip_name(name: &str) -> String {
    format!("{name}.gz")
}

impl OutputFile {
    /// Creates `dir/name`, or `dir/name.gz` (gzip'd) when `gzip`.
    pub fn create(dir: &Path, name: &str, gzip: bool) -> Result<OutputFile> {
        let path = if gzip {
            dir.join(gzip_name(name))
        } else {
            dir.join(name)
        };
        let file = File::create(&path).map_err(|e| Error::io(&path, e))?;
        let hashed = HashingWriter::new(BufWriter::with_capacity(1 << 16, file));
        let body = if gzip {
            // No file name and no modification time in the header (flate2
            // writes neither unless asked): the same bytes every run.
            Body::Gzip(Box::new(GzEncoder::new(
                hashed,
                flate2::Compression::new(LEVEL),
            )))
        } else {
            Body::Plain(hashed)
        };
        Ok(OutputFile {
            path,
            body: BufWriter::with_capacity(1 << 20, body),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `text`, naming the file on failure.
    pub fn write_text(&mut self, text: &str) -> Result<()> {
        self.write_bytes(text.as_bytes())
    }

    /// Writes `bytes` (text a serialiser made, which is UTF-8 already:
    /// checking gigabytes of it again costs time), naming the file on failure.
    pub fn write_bytes(&mut self, bytes: &[u8]) -> Result<()> {
        self.body
            .write_all(bytes)
            .map_err(|e| Error::io(&self.path, e))
    }

    /// Flushes (ends the gzip stream); the path with the file's sha256.
    pub fn finish(self) -> Result<(PathBuf, String)> {
        let path = self.path;
        let body = self
            .body
            .into_inner()
            .map_err(|e| Error::io(&path, e.into_error()))?;
        let mut hashed = match body {
            Body::Plain(hashed) => hashed,
            Body::Gzip(gz) => gz.finish().map_err(|e| Error::io(&path, e))?,
        };
        hashed.inner.flush().map_err(|e| Error::io(&path, e))?;
        Ok((path, hex::encode(hashed.hasher.finalize())))
    }
}

impl Write for OutputFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.body.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.body.flush()
    }
}

/// Opens `dir/name`, or `dir/name.gz` (decompressed as it is read) for an
/// audit written with `--compress`: the readers of an audit (diff,
/// `--baseline`, verify, export) take either. `missing` says what to do
/// when neither is there. Both at once is refused: one of them is not the
/// audit's.
pub fn open_either(dir: &Path, name: &str, missing: &str) -> Result<(PathBuf, Box<dyn Read>)> {
    let plain = dir.join(name);
    let gz = dir.join(gzip_name(name));
    match (
        std::fs::symlink_metadata(&plain).is_ok(),
        std::fs::symlink_metadata(&gz).is_ok(),
    ) {
        (true, true) => Err(Error::input(format!(
            "{}: holds both {name} and {name}.gz; an audit writes one of them (remove the one its manifest.json does not list)",
            dir.display()
        ))),
        (false, true) => {
            let (file, len) = open_regular_file(&gz, missing)?;
            let text = MultiGzDecoder::new(BufReader::new(file.take(len)));
            // A small file must not inflate into memory without bound: at
            // most INFLATE_RATIO times its size, and never more than a
            // plain file may hold.
            let limit = len.saturating_mul(INFLATE_RATIO).min(MAX_INPUT_FILE_BYTES);
            Ok((
                gz,
                Box::new(Inflating {
                    inner: text,
                    read: 0,
                    limit,
                }),
            ))
        }
        _ => {
            let (file, len) = open_regular_file(&plain, missing)?;
            Ok((plain, Box::new(BufReader::new(file.take(len)))))
        }
    }
}

/// [`open_either`], read whole as UTF-8 text.
pub fn read_either(dir: &Path, name: &str, missing: &str) -> Result<(PathBuf, String)> {
    let (path, mut reader) = open_either(dir, name, missing)?;
    let mut text = String::new();
    reader
        .read_to_string(&mut text)
        .map_err(|e| Error::io(&path, e))?;
    Ok((path, text))
}

/// Writes through, hashing what passes: the manifest's sha256 of a file
/// without reading it back.
pub struct HashingWriter<W> {
    pub inner: W,
    pub hasher: sha2::Sha256,
}

impl<W> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: sha2::Sha256::new(),
        }
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        if let Some(written) = buf.get(..n) {
            self.hasher.update(written);
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// How many times its size a gzip'd file of an audit may inflate to. What
/// `--compress` writes inflates 7-20 times at 100k AMIs (findings.json 10,
/// ASFF 20: level 1 on repeated ids and texts); a file of one repeated
/// byte, about a thousand.
const INFLATE_RATIO: u64 = 128;

/// A decompressing reader: fails once more than `limit` bytes came out,
/// and says a stream that does not inflate is not a whole gzip file.
struct Inflating<R> {
    inner: R,
    read: u64,
    limit: u64,
}

impl<R: Read> Read for Inflating<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("not a whole gzip file (truncated, or other bytes after it): {e}"),
            )
        })?;
        self.read += n as u64;
        if self.read > self.limit {
            return Err(std::io::Error::other(format!(
                "inflates to more than {INFLATE_RATIO} times its size or {} MiB; not a file amiaudit wrote",
                MAX_INPUT_FILE_BYTES >> 20
            )));
        }
        Ok(n)
    }
}
