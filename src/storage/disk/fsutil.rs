//! File-system helpers for crash-safe updates: directory fsync and
//! atomic whole-file replacement.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

/// Fsyncs a directory so that entries created, renamed or removed in it
/// survive a crash.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Replaces `path` with `bytes` so that a crash leaves either the old or
/// the new content: writes `<path>.tmp`, fsyncs it, renames it over
/// `path` and fsyncs the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = Path::new(&tmp);
    let mut file = File::create(tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    fs::rename(tmp, path)?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}
