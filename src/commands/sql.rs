//! `ctrace sql`: ad-hoc read-only queries, for machines without the sqlite3 shell.

use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::Context;
use rusqlite::types::ValueRef;

use crate::cli::SqlArgs;
use crate::store;

pub fn run(args: SqlArgs) -> anyhow::Result<ExitCode> {
    match print_rows(&args) {
        // `ctrace sql ... | head` closing the pipe early is not an error.
        Err(e)
            if e.downcast_ref::<io::Error>().map(io::Error::kind)
                == Some(io::ErrorKind::BrokenPipe) =>
        {
            Ok(ExitCode::SUCCESS)
        }
        other => other,
    }
}

fn print_rows(args: &SqlArgs) -> anyhow::Result<ExitCode> {
    let conn = store::open_ro(&args.db)?;
    let mut stmt = conn
        .prepare(&args.query)
        .with_context(|| format!("preparing query on `{}`", args.db.display()))?;
    let columns = stmt.column_count();
    let mut out = io::stdout().lock();
    writeln!(out, "{}", stmt.column_names().join("\t"))?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let mut fields = Vec::with_capacity(columns);
        for i in 0..columns {
            fields.push(match row.get_ref(i)? {
                ValueRef::Null => String::new(),
                ValueRef::Integer(v) => v.to_string(),
                ValueRef::Real(v) => v.to_string(),
                ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
                ValueRef::Blob(b) => format!("<{} bytes>", b.len()),
            });
        }
        writeln!(out, "{}", fields.join("\t"))?;
    }
    Ok(ExitCode::SUCCESS)
}
