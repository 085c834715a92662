//! Atomic file writes: a temporary file in the same folder, fsync, rename.
//! A reader (or a crash) sees the old file or the new one, never half of it.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::{Context, Result};

/// Write `path` atomically with whatever `fill` writes into the buffer.
pub fn write_atomic(
    path: &Path,
    fill: impl FnOnce(&mut BufWriter<&File>) -> Result<()>,
) -> Result<()> {
    let dir = parent_dir(path);
    std::fs::create_dir_all(dir)
        .with_context(|| format!("could not create folder {}", dir.display()))?;
    let tmp = tempfile::Builder::new()
        .prefix(".ferry-tmp-")
        .tempfile_in(dir)
        .with_context(|| format!("could not create a temporary file in {}", dir.display()))?;
    {
        let mut writer = BufWriter::new(tmp.as_file());
        fill(&mut writer)?;
        writer
            .flush()
            .with_context(|| format!("could not write {}", path.display()))?;
    }
    tmp.as_file()
        .sync_all()
        .with_context(|| format!("could not flush {} to disk", path.display()))?;
    tmp.persist(path)
        .with_context(|| format!("could not replace {}", path.display()))?;
    // The rename is durable only once the folder entry is on disk too.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Write `bytes` to `path` atomically.
pub fn write_bytes_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic(path, |w| {
        w.write_all(bytes)
            .with_context(|| format!("could not write {}", path.display()))
    })
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}
