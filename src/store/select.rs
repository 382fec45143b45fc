//! Store selections (`--since 7d --name web ...`) materialized as Tracefiles.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{params_from_iter, Connection, ToSql};

use super::bits::{self, Class};
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

/// The syscalls and granted capabilities of the selected containers in the selected window.
/// Numbers this build cannot name come out under placeholder names (`x86_64_syscall_999`), for
/// the caller to report.
pub fn select_tracefile(conn: &Connection, sel: &Selection) -> Result<Tracefile, SelectError> {
    let now = SystemTime::now();
    // The runs selected; the refusals of their containers come with them.
    let mut sql = String::from("FROM runs r WHERE r.kind IN ('syscall', 'cap_granted')");
    let mut params: Vec<Box<dyn ToSql>> = Vec::new();
    if !sel.runc {
        sql.push_str(" AND r.init = 0");
    }
    if let Some(since) = &sel.since {
        sql.push_str(" AND r.last_seen >= ?");
        params.push(Box::new(parse_when(since, now)?));
    }
    if let Some(until) = &sel.until {
        sql.push_str(" AND r.first_seen <= ?");
        params.push(Box::new(parse_when(until, now)?));
    }
    let mut containers = Vec::new();
    let mut any_of = |column: &str, values: &[String], prefix: bool| {
        if values.is_empty() {
            return;
        }
        let test = if prefix { "LIKE ? || '%'" } else { "= ?" };
        let alternatives: Vec<String> = values.iter().map(|_| format!("{column} {test}")).collect();
        containers.push(format!("({})", alternatives.join(" OR ")));
        for v in values {
            params.push(Box::new(v.trim_start_matches('/').to_string()));
        }
    };
    any_of("c.label", &sel.labels, false);
    any_of("c.name", &sel.names, false);
    any_of("c.image", &sel.images, false);
    any_of("c.container_id", &sel.containers, true);
    if !containers.is_empty() {
        sql.push_str(&format!(
            " AND r.container IN (SELECT c.id FROM containers c WHERE {})",
            containers.join(" AND ")
        ));
    }

    let params: Vec<&dyn ToSql> = params.iter().map(|p| p.as_ref()).collect();
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
