//! Tracefiles from the store: the union of the stored sets, named.

use std::collections::BTreeMap;

use rusqlite::{params, Connection, Row};

use super::bits::{self, Bits, Class};
use crate::names;
use crate::tracefile::Tracefile;

/// Collects `kind, abi, w0..w7` rows into one set per class.
#[derive(Debug, Default)]
pub struct Union(BTreeMap<Class, Bits>);

impl Union {
    pub fn add_row(&mut self, row: &Row<'_>) -> rusqlite::Result<()> {
        let kind: String = row.get(0)?;
        let abi: Option<String> = row.get(1)?;
        if let Some(class) = Class::from_columns(&kind, abi.as_deref()) {
            let set = Bits::from_row(row, 2)?;
            let entry = self.0.entry(class).or_default();
            *entry = entry.union(&set);
        }
        Ok(())
    }

    /// Syscalls and granted capabilities as a Tracefile. Numbers this build cannot name are
    /// returned apart, left out of the Tracefile.
    pub fn into_tracefile(self) -> (Tracefile, Vec<(Class, u32)>) {
        let mut out = Tracefile::default();
        let mut unnamed = Vec::new();
        for (class, set) in self.0 {
            for nr in set.iter() {
                match class {
                    Class::Syscall(abi) => match names::syscall_name(abi, nr) {
                        Some(name) => out.add_syscall(abi, name),
                        None => unnamed.push((class, nr)),
                    },
                    Class::CapGranted => match names::capability_name(nr) {
                        Some(name) => out.add_capability(&name),
                        None => unnamed.push((class, nr)),
                    },
                    Class::CapDenied => {}
                }
            }
        }
        (out, unnamed)
    }
}

/// A Tracefile from the store: everything recorded under that file name.
pub fn materialize(conn: &Connection, path: &str, runc: bool) -> rusqlite::Result<Tracefile> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT r.kind, r.abi, {} FROM runs r JOIN tracefiles t ON t.id = r.tracefile \
         WHERE t.path = ?1 AND r.kind IN ('syscall', 'cap_granted') AND (r.init = 0 OR ?2)",
        bits::WORD_COLUMNS
    ))?;
    let mut rows = stmt.query(params![path, runc])?;
    let mut union = Union::default();
    while let Some(row) = rows.next()? {
        union.add_row(row)?;
    }
    let (mut tracefile, unnamed) = union.into_tracefile();
    super::refusals::add_for_containers(
        conn,
        "SELECT r.container FROM runs r JOIN tracefiles t ON t.id = r.tracefile WHERE t.path = ?1",
        &[&path],
        &mut tracefile,
    )?;
    for (class, nr) in unnamed {
        let name = class.name(nr);
        // Every rewrite of the Tracefile meets it again: said once.
        if crate::logging::first_time(&format!("unnamed {name} in {path}")) {
            tracing::warn!("`{name}` has no name in its table; left out of `{path}`");
        }
    }
    Ok(tracefile)
}
