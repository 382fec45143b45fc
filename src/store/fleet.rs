//! Several stores read as one (`--db a.db --db b.db`, `--db DIR`): one per node of a fleet.
//!
//! A directory stands for every file named `*.db` under it (recursively, sorted; hidden
//! names skipped). Every store is opened read-only (`open_ro`) before anything is selected,
//! so a file that is not a ctrace store, or one of a newer schema, stops the command with
//! its name before any output is written. A node is named by the `meta` key `node` when the
//! store has one, else by its file stem (`nodes/node-a.db` → `node-a`); two stores with the
//! same name are told apart by their paths.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension};

use super::{check_known_schema, open_ro, StoreError};

/// One store of the selection.
pub struct Node {
    pub name: String,
    pub path: PathBuf,
    pub conn: Connection,
}

#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("reading directory `{path}`: {source}")]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("directory `{0}` holds no store (no file named *.db under it)")]
    Empty(PathBuf),
    #[error("store `{path}`: reading its node name (meta key `node`): {source}")]
    Name {
        path: PathBuf,
        source: rusqlite::Error,
    },
}

/// The store files `--db` values name: files as given, directories searched for `*.db`.
pub fn store_paths(dbs: &[PathBuf]) -> Result<Vec<PathBuf>, FleetError> {
    let mut out = Vec::new();
    for db in dbs {
        if db.is_dir() {
            let before = out.len();
            walk(db, &mut out)?;
            if out.len() == before {
                return Err(FleetError::Empty(db.clone()));
            }
        } else {
            out.push(db.clone());
        }
    }
    // The same file named twice (a.db and ./a.db) is read once.
    let mut seen = BTreeSet::new();
    out.retain(|p| seen.insert(std::fs::canonicalize(p).unwrap_or_else(|_| p.clone())));
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), FleetError> {
    let io = |source| FleetError::Dir {
        path: dir.to_path_buf(),
        source,
    };
    let mut entries = std::fs::read_dir(dir)
        .map_err(io)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(io)?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            walk(&path, out)?;
        } else if name.ends_with(".db") {
            out.push(path);
        }
    }
    Ok(())
}

/// Opens every store the `--db` values name, read-only, and names its node.
pub fn open_nodes(dbs: &[PathBuf]) -> Result<Vec<Node>, FleetError> {
    let mut nodes = Vec::new();
    for path in store_paths(dbs)? {
        let conn = open_ro(&path)?;
        check_known_schema(&path, &conn)?;
        let meta: Option<String> = conn
            .query_row("SELECT value FROM meta WHERE key = 'node'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|source| FleetError::Name {
                path: path.clone(),
                source,
            })?;
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string());
        nodes.push(Node {
            name: meta.filter(|m| !m.is_empty()).unwrap_or(stem),
            path,
            conn,
        });
    }
    let names: Vec<String> = nodes.iter().map(|n| n.name.clone()).collect();
    for node in &mut nodes {
        if names.iter().filter(|n| **n == node.name).count() > 1 {
            node.name = node.path.display().to_string();
        }
    }
    Ok(nodes)
}
