//! Finding Tracefiles: a file, or every file under a directory (recursively, sorted), minus
//! hidden names and the store's and profiles' files; and reading their union.

use std::path::{Path, PathBuf};

use super::parse::{read_tracefile, ParseError};
use super::Tracefile;

/// File-name suffixes skipped when searching directories (the store, its lock and
/// profiles). Labels cannot name such files either (`tracefile/label.rs`).
pub const SKIPPED_SUFFIXES: [&str; 6] =
    [".db", ".db-wal", ".db-shm", ".db-journal", ".json", ".lock"];

/// Every Tracefile a path names: the file itself, or the files found under a directory
/// (recursively, sorted, by the rule in the module documentation).
pub fn collect_tracefiles(path: &Path) -> Result<Vec<PathBuf>, ParseError> {
    let meta = std::fs::metadata(path).map_err(ParseError::io(path))?;
    if !meta.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut found = Vec::new();
    walk(path, &mut found)?;
    if found.is_empty() {
        return Err(ParseError::EmptyDirectory {
            path: path.to_path_buf(),
        });
    }
    Ok(found)
}

/// Whether a directory entry of this name is skipped when searching for Tracefiles.
pub fn is_skipped_name(name: &str) -> bool {
    name.starts_with('.') || SKIPPED_SUFFIXES.iter().any(|suffix| name.ends_with(suffix))
}

fn walk(dir: &Path, found: &mut Vec<PathBuf>) -> Result<(), ParseError> {
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(ParseError::io(dir))? {
        let entry = entry.map_err(ParseError::io(dir))?;
        entries.push(entry);
    }
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let name = entry.file_name();
        if is_skipped_name(&name.to_string_lossy()) {
            continue;
        }
        let file_type = entry.file_type().map_err(ParseError::io(&path))?;
        if file_type.is_dir() {
            walk(&path, found)?;
        } else if file_type.is_file() {
            found.push(path);
        } else if file_type.is_symlink() {
            // Followed to files only; a dangling link or one to a directory is skipped.
            if std::fs::metadata(&path)
                .map(|m| m.is_file())
                .unwrap_or(false)
            {
                found.push(path);
            }
        }
    }
    Ok(())
}

/// Reads every Tracefile the paths name and returns their union, with the files read.
/// Fails on the first bad file.
pub fn read_union(paths: &[PathBuf]) -> Result<(Tracefile, Vec<PathBuf>), ParseError> {
    let mut union = Tracefile::default();
    let mut files = Vec::new();
    for path in paths {
        for file in collect_tracefiles(path)? {
            union.merge(&read_tracefile(&file)?);
            files.push(file);
        }
    }
    Ok((union, files))
}
