//! Files and directories: [`walk_path`] reads a file, or every regular file below a directory in name order,
//! and walks each one; the file's path is its source label. A DMARC report in a bare XML file or a gzip
//! is streamed (`crate::stream`), with the same answer as the in-memory walk.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::stream;
use crate::walk::{Code, Found, FoundError, Limits, human, read_capped, walk};

/// Walks the file at `path`, or every regular file below the directory at `path` (sorted by name; symbolic
/// links are not followed, so a link loop cannot recurse), each labelled with its path.
///
/// A bare XML file, or a gzip whose content is XML, is parsed as it is read and inflated, never held whole:
/// with [`mtasts_proto::dmarc::Mode::Summary`] memory does not grow with the number of records. The items
/// are the ones [`walk`] gives for the file's bytes. With [`Limits::keep_raw`] every file is read whole.
///
/// A file larger than [`Limits::max_input_bytes`], more files than [`Limits::max_files`], or directories
/// nested deeper than [`Limits::max_depth`] give a `too-large` item and the walk goes on with the rest.
///
/// # Errors
///
/// The I/O error, with the path in its message, when `path` or something below it cannot be opened or
/// listed.
pub fn walk_path(path: &Path, limits: &Limits) -> io::Result<Vec<Found>> {
    let mut out = Vec::new();
    let mut files = 0;
    visit_path(path, 0, limits, &mut files, &mut out)?;
    Ok(out)
}

fn with_path(path: &Path) -> impl Fn(io::Error) -> io::Error + '_ {
    move |e| io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

fn too_large(path: &Path, message: String) -> Found {
    Found::Error(FoundError {
        source: path.display().to_string(),
        code: Code::TooLarge,
        message,
    })
}

fn visit_path(
    path: &Path,
    depth: usize,
    limits: &Limits,
    files: &mut usize,
    out: &mut Vec<Found>,
) -> io::Result<()> {
    let meta = fs::symlink_metadata(path).map_err(with_path(path))?;
    let meta = if depth == 0 && meta.file_type().is_symlink() {
        fs::metadata(path).map_err(with_path(path))?
    } else {
        meta
    };
    if meta.is_dir() {
        if depth > limits.max_depth {
            let max = limits.max_depth;
            out.push(too_large(
                path,
                format!("directories nested deeper than {max} (max_depth)"),
            ));
            return Ok(());
        }
        let mut entries: Vec<PathBuf> = fs::read_dir(path)
            .map_err(with_path(path))?
            .map(|e| e.map(|e| e.path()))
            .collect::<io::Result<_>>()
            .map_err(with_path(path))?;
        entries.sort();
        for entry in entries {
            visit_path(&entry, depth + 1, limits, files, out)?;
        }
        return Ok(());
    }
    if !meta.is_file() {
        return Ok(());
    }
    *files += 1;
    if *files > limits.max_files {
        if *files == limits.max_files + 1 {
            let max = limits.max_files;
            out.push(too_large(
                path,
                format!("more than {max} files (max_files); the rest are not read"),
            ));
        }
        return Ok(());
    }
    // A bare XML file or a gzip of one is parsed as it is read (a report of a million records never sits
    // in memory); everything else is read whole and walked.
    if let Some(found) = stream::walk_file(path, meta.len(), limits).map_err(with_path(path))? {
        out.push(found);
        return Ok(());
    }
    let max = limits.max_input_bytes;
    let file = fs::File::open(path).map_err(with_path(path))?;
    match read_capped(file, max).map_err(with_path(path))? {
        Some(bytes) => out.extend(walk(&bytes, &path.display().to_string(), limits)),
        None => out.push(too_large(
            path,
            format!(
                "the file is larger than the {} limit (max_input_bytes)",
                human(max)
            ),
        )),
    }
    Ok(())
}
