//! Store selections (`--since 7d --name web ...`) materialized as Tracefiles, and the parts
//! of a selection `report` shows one by one (per Tracefile or per container).

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{params_from_iter, Connection, ToSql};

use super::bits::{self, Bits, Class};
use super::materialize::Union;
use crate::cli::Selection;
use crate::tracefile::Tracefile;

#[derive(Debug, thiserror::Error)]
pub enum SelectError {
    #[error("`{0}` is neither a duration (7d, 12h) nor an RFC 3339 time")]
    BadTime(String),
    #[error("querying the store: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

/// `7d` → now − 7 days; `2026-11-01T00:00:00Z` → that instant. Unix milliseconds.
pub fn parse_when(value: &str, now: SystemTime) -> Result<i64, SelectError> {
    let instant = if let Ok(d) = humantime::parse_duration(value) {
        now.checked_sub(d).unwrap_or(UNIX_EPOCH)
    } else if let Ok(t) = humantime::parse_rfc3339_weak(value) {
        t
    } else {
        return Err(SelectError::BadTime(value.to_string()));
    };
    let ms = instant
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis();
    Ok(i64::try_from(ms).unwrap_or(i64::MAX))
}

/// A part of a selection: everything, one Tracefile or one container (`tracefiles.id`,
/// `containers.id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    All,
    Tracefile(i64),
    Container(i64),
}

/// A `WHERE` clause over `runs r` (or `first_sightings r`, which has the same `container`,
/// `tracefile` and `init` columns) and its parameters.
pub(super) struct Filter {
    pub(super) sql: String,
    pub(super) params: Vec<Box<dyn ToSql>>,
}

impl Filter {
    /// The selection's phase and container filters, within `scope`; times are the caller's,
    /// as the two tables keep them differently.
    pub(super) fn new(sel: &Selection, scope: Scope) -> Filter {
        let mut f = Filter {
            sql: String::from("1"),
            params: Vec::new(),
        };
        if !sel.runc {
            f.sql.push_str(" AND r.init = 0");
        }
        let mut containers = Vec::new();
        let mut any_of = |column: &str, values: &[String], prefix: bool| {
            if values.is_empty() {
                return;
            }
            let test = if prefix { "LIKE ? || '%'" } else { "= ?" };
            let alternatives: Vec<String> =
                values.iter().map(|_| format!("{column} {test}")).collect();
            containers.push(format!("({})", alternatives.join(" OR ")));
            for v in values {
                f.params
                    .push(Box::new(v.trim_start_matches('/').to_string()));
            }
        };
        any_of("c.label", &sel.labels, false);
        any_of("c.name", &sel.names, false);
        any_of("c.image", &sel.images, false);
        any_of("c.container_id", &sel.containers, true);
        if !containers.is_empty() {
            f.sql.push_str(&format!(
                " AND r.container IN (SELECT c.id FROM containers c WHERE {})",
                containers.join(" AND ")
            ));
        }
        match scope {
            Scope::All => {}
            Scope::Tracefile(id) => {
                f.sql.push_str(" AND r.tracefile = ?");
                f.params.push(Box::new(id));
            }
            Scope::Container(id) => {
                f.sql.push_str(" AND r.container = ?");
                f.params.push(Box::new(id));
            }
        }
        f
    }

    /// Plus `--since`/`--until` on runs: a run counts if it overlaps the window.
    pub(super) fn with_run_times(
        mut self,
        sel: &Selection,
        now: SystemTime,
    ) -> Result<Filter, SelectError> {
        if let Some(since) = &sel.since {
            self.sql.push_str(" AND r.last_seen >= ?");
            self.params.push(Box::new(parse_when(since, now)?));
        }
        if let Some(until) = &sel.until {
            self.sql.push_str(" AND r.first_seen <= ?");
            self.params.push(Box::new(parse_when(until, now)?));
        }
        Ok(self)
    }

    pub(super) fn params(&self) -> Vec<&dyn ToSql> {
        self.params.iter().map(|p| p.as_ref()).collect()
    }
}

/// The syscalls and granted capabilities of the selected containers in the selected window.
/// Numbers this build cannot name come out under placeholder names (`x86_64_syscall_999`), for
/// the caller to report.
/// The error of a selection that matches nothing: never an empty (deny-all) result.
pub fn matches_nothing(db: &std::path::Path) -> anyhow::Error {
    anyhow::anyhow!(
        "the selection matches nothing recorded in store `{0}` (check --since/--until and the \
         container filters; `ctrace sql --db {0} \"SELECT * FROM container_summary\"` lists \
         what is there)",
        db.display()
    )
}

pub fn select_tracefile(conn: &Connection, sel: &Selection) -> Result<Tracefile, SelectError> {
    select_scoped(conn, sel, Scope::All)
}

/// As [`select_tracefile`], within one Tracefile or container of the selection.
pub fn select_scoped(
    conn: &Connection,
    sel: &Selection,
    scope: Scope,
) -> Result<Tracefile, SelectError> {
    let filter = Filter::new(sel, scope).with_run_times(sel, SystemTime::now())?;
    // The runs selected; the refusals of their containers come with them.
    let sql = format!(
        "FROM runs r WHERE r.kind IN ('syscall', 'cap_granted') AND {}",
        filter.sql
    );
    let params = filter.params();
    let mut stmt = conn.prepare(&format!(
        "SELECT r.kind, r.abi, {} {sql}",
        bits::WORD_COLUMNS
    ))?;
    let mut rows = stmt.query(params_from_iter(params.iter()))?;
    let mut union = Union::default();
    while let Some(row) = rows.next()? {
        union.add_row(row)?;
    }
    let (mut out, unnamed) = union.into_tracefile();
    super::refusals::add_for_containers(
        conn,
        &format!("SELECT r.container {sql}"),
        &params,
        &mut out,
    )?;
    for (class, nr) in unnamed {
        match class {
            Class::Syscall(abi) => out.add_syscall(abi, &class.name(nr)),
            _ => out.add_capability(&class.name(nr)),
        }
    }
    Ok(out)
}

/// The capabilities the selection was refused (checks that failed), by name.
pub fn select_denied(
    conn: &Connection,
    sel: &Selection,
    scope: Scope,
) -> Result<BTreeSet<String>, SelectError> {
    let filter = Filter::new(sel, scope).with_run_times(sel, SystemTime::now())?;
    let mut stmt = conn.prepare(&format!(
        "SELECT {} FROM runs r WHERE r.kind = 'cap_denied' AND {}",
        bits::WORD_COLUMNS,
        filter.sql
    ))?;
    let mut rows = stmt.query(params_from_iter(filter.params().iter()))?;
    let mut set = Bits::default();
    while let Some(row) = rows.next()? {
        set = set.union(&Bits::from_row(row, 0)?);
    }
    Ok(set.iter().map(|nr| Class::CapDenied.name(nr)).collect())
}

/// One part of a selection, as `report` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub scope: Scope,
    /// The Tracefile's path, or the container's name.
    pub title: String,
}

/// The Tracefiles (or, with `by_container`, the containers) with runs in the selection, in
/// the order of their first run.
pub fn select_parts(
    conn: &Connection,
    sel: &Selection,
    by_container: bool,
) -> Result<Vec<Part>, SelectError> {
    let filter = Filter::new(sel, Scope::All).with_run_times(sel, SystemTime::now())?;
    let (table, title) = if by_container {
        ("containers", "name")
    } else {
        ("tracefiles", "path")
    };
    let column = if by_container {
        "container"
    } else {
        "tracefile"
    };
    let mut stmt = conn.prepare(&format!(
        "SELECT g.id, g.{title} FROM {table} g JOIN runs r ON r.{column} = g.id \
         WHERE {} GROUP BY g.id ORDER BY min(r.first_seen), g.id",
        filter.sql
    ))?;
    let parts = stmt.query_map(params_from_iter(filter.params().iter()), |row| {
        let id: i64 = row.get(0)?;
        Ok(Part {
            scope: if by_container {
                Scope::Container(id)
            } else {
                Scope::Tracefile(id)
            },
            title: row.get(1)?,
        })
    })?;
    Ok(parts.collect::<Result<_, _>>()?)
}

/// A first sighting: when an item's use started (Unix ms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sighting {
    pub at_ms: i64,
    pub class: Class,
    pub name: String,
}

/// The first sightings of a selection, in time order; `--since`/`--until` bound their times.
pub fn select_sightings(
    conn: &Connection,
    sel: &Selection,
    scope: Scope,
) -> Result<Vec<Sighting>, SelectError> {
    let now = SystemTime::now();
    let mut filter = Filter::new(sel, scope);
    let at = "json_extract(j.value, '$[1]')";
    if let Some(since) = &sel.since {
        filter.sql.push_str(&format!(" AND {at} >= ?"));
        filter.params.push(Box::new(parse_when(since, now)?));
    }
    if let Some(until) = &sel.until {
        filter.sql.push_str(&format!(" AND {at} <= ?"));
        filter.params.push(Box::new(parse_when(until, now)?));
    }
    let mut stmt = conn.prepare(&format!(
        "SELECT r.kind, r.abi, json_extract(j.value, '$[0]'), {at} \
         FROM first_sightings r JOIN json_each(r.items) j WHERE {} ORDER BY 4, 1, 3",
        filter.sql
    ))?;
    let mut rows = stmt.query(params_from_iter(filter.params().iter()))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let kind: String = row.get(0)?;
        let abi: Option<String> = row.get(1)?;
        let (nr, at_ms): (Option<i64>, Option<i64>) = (row.get(2)?, row.get(3)?);
        let (Some(class), Some(nr), Some(at_ms)) = (
            Class::from_columns(&kind, abi.as_deref()),
            nr.and_then(|n| u32::try_from(n).ok()),
            at_ms,
        ) else {
            continue;
        };
        out.push(Sighting {
            at_ms,
            class,
            name: class.name(nr),
        });
    }
    Ok(out)
}

/// A container with runs in a selection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectedContainer {
    pub container_id: String,
    pub name: String,
    pub image: String,
    /// The `ctrace.tracefile` label (a pattern).
    pub label: String,
    pub started_at: i64,
}

/// The containers with runs in a selection (within `scope`), in the order they started.
pub fn select_containers(
    conn: &Connection,
    sel: &Selection,
    scope: Scope,
) -> Result<Vec<SelectedContainer>, SelectError> {
    let filter = Filter::new(sel, scope).with_run_times(sel, SystemTime::now())?;
    let mut stmt = conn.prepare(&format!(
        "SELECT c.container_id, c.name, c.image, c.label, c.started_at FROM containers c \
         WHERE c.id IN (SELECT r.container FROM runs r WHERE {}) ORDER BY c.started_at, c.id",
        filter.sql
    ))?;
    let rows = stmt.query_map(params_from_iter(filter.params().iter()), |row| {
        Ok(SelectedContainer {
            container_id: row.get(0)?,
            name: row.get(1)?,
            image: row.get(2)?,
            label: row.get(3)?,
            started_at: row.get(4)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
