//! `ctrace sql`: ad-hoc read-only queries, for machines without the sqlite3 shell.
//!
//! `sql` often runs as root next to the daemon, so a query must write nothing, in the store or
//! anywhere else (`VACUUM INTO '/etc/x'` and `ATTACH` create files even on a read-only
//! connection; `load_extension` runs code). Layers, each enough for most statements:
//!
//! 1. the store is opened read-only ([`store::open_ro`]);
//! 2. extension loading is disabled, ATTACH may neither create nor write a file, and the
//!    defensive flag is set (no `writable_schema`);
//! 3. `PRAGMA query_only`;
//! 4. an authorizer ([`authorize`]) that admits only reading: SELECT, reading columns,
//!    recursive CTEs, functions that neither load code nor touch files, and pragmas that only
//!    report; everything else (ATTACH, DETACH, INSERT/UPDATE/DELETE, CREATE/DROP/ALTER,
//!    transactions, savepoints, ANALYZE, REINDEX, setting a pragma, ...) is refused;
//! 5. a statement SQLite itself does not call read-only is refused before it runs (VACUUM
//!    asks no authorizer).
//!
//! Output: tab-separated with a header line (tabs, line breaks and backslashes in values
//! escaped as `\t`, `\n`, `\r`, `\\`; NULL is empty), `--csv` (RFC 4180) or `--json` (an
//! array of objects, column → value). Blobs print as `<N bytes>`.

use std::io::{self, Write};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use rusqlite::config::DbConfig;
use rusqlite::hooks::{AuthAction, AuthContext, Authorization, TransactionOperation};
use rusqlite::types::ValueRef;
use rusqlite::{ffi, Connection, Row, Rows, Statement};

use crate::cli::SqlArgs;
use crate::store;

/// Pragmas that report on a table, an index or the whole database: allowed with an argument
/// (the name of what they report on, or a row limit), which sets nothing.
#[rustfmt::skip]
const REPORTING_PRAGMAS: &[&str] = &[
    "foreign_key_check", "foreign_key_list", "index_info", "index_list", "index_xinfo",
    "integrity_check", "quick_check", "table_info", "table_list", "table_xinfo",
];

/// Pragmas that are settings or lists: allowed only without an argument, i.e. to read them.
#[rustfmt::skip]
const READABLE_PRAGMAS: &[&str] = &[
    "application_id", "auto_vacuum", "automatic_index", "busy_timeout", "cache_size",
    "cache_spill", "cell_size_check", "collation_list", "compile_options", "data_version",
    "database_list", "defer_foreign_keys", "encoding", "foreign_keys", "freelist_count",
    "function_list", "hard_heap_limit", "ignore_check_constraints",
    "journal_size_limit", "legacy_alter_table", "locking_mode", "max_page_count", "mmap_size",
    "module_list", "page_count", "page_size", "pragma_list", "query_only", "read_uncommitted",
    "recursive_triggers", "reverse_unordered_selects", "schema_version", "secure_delete",
    "soft_heap_limit", "synchronous", "temp_store", "threads", "trusted_schema",
    "user_version", "wal_autocheckpoint",
];

/// Functions that load code, read or write files, or configure the engine.
#[rustfmt::skip]
const REFUSED_FUNCTIONS: &[&str] = &[
    "edit", "fts3_tokenizer", "load_extension", "readfile", "writefile",
];

/// The `sqlite_*` functions that only report; other names with that prefix are internal
/// (`sqlite_attach`, `sqlite_rename_table`, ...) and refused.
#[rustfmt::skip]
const SQLITE_REPORTING_FUNCTIONS: &[&str] = &[
    "sqlite_compileoption_get", "sqlite_compileoption_used", "sqlite_offset",
    "sqlite_source_id", "sqlite_version",
];

/// The authorizer's rule: `Ok` for what only reads, otherwise what was refused, named for
/// the error message (`ATTACH`, `INSERT into containers`, `function load_extension()`).
pub fn authorize(action: &AuthAction<'_>) -> Result<(), String> {
    match *action {
        AuthAction::Select | AuthAction::Read { .. } | AuthAction::Recursive => Ok(()),
        AuthAction::Function { function_name } => {
            let name = function_name.to_ascii_lowercase();
            let refused = REFUSED_FUNCTIONS.contains(&name.as_str())
                || (name.starts_with("sqlite_")
                    && !SQLITE_REPORTING_FUNCTIONS.contains(&name.as_str()));
            if refused {
                Err(format!("function {function_name}()"))
            } else {
                Ok(())
            }
        }
        AuthAction::Pragma {
            pragma_name,
            pragma_value,
        } => {
            let name = pragma_name.to_ascii_lowercase();
            if REPORTING_PRAGMAS.contains(&name.as_str())
                || (pragma_value.is_none() && READABLE_PRAGMAS.contains(&name.as_str()))
            {
                Ok(())
            } else if let Some(value) = pragma_value {
                Err(format!("PRAGMA {pragma_name} = {value}"))
            } else {
                Err(format!("PRAGMA {pragma_name}"))
            }
        }
        AuthAction::Insert { table_name } => Err(format!("INSERT into {table_name}")),
        AuthAction::Update { table_name, .. } => Err(format!("UPDATE of {table_name}")),
        AuthAction::Delete { table_name } => Err(format!("DELETE from {table_name}")),
        AuthAction::Attach { .. } => Err("ATTACH".into()),
        AuthAction::Detach { .. } => Err("DETACH".into()),
        AuthAction::Transaction { operation } => Err(match operation {
            TransactionOperation::Begin => "BEGIN".into(),
            TransactionOperation::Rollback => "ROLLBACK".into(),
            _ => "COMMIT".into(),
        }),
        AuthAction::Savepoint { operation, .. } => Err(match operation {
            TransactionOperation::Release => "RELEASE".into(),
            TransactionOperation::Rollback => "ROLLBACK TO".into(),
            _ => "SAVEPOINT".into(),
        }),
        AuthAction::AlterTable { table_name, .. } => Err(format!("ALTER TABLE {table_name}")),
        AuthAction::Analyze { .. } => Err("ANALYZE".into()),
        AuthAction::Reindex { .. } => Err("REINDEX".into()),
        AuthAction::CreateTable { table_name } | AuthAction::CreateTempTable { table_name } => {
            Err(format!("CREATE TABLE {table_name}"))
        }
        AuthAction::CreateView { view_name } | AuthAction::CreateTempView { view_name } => {
            Err(format!("CREATE VIEW {view_name}"))
        }
        AuthAction::CreateIndex { index_name, .. }
        | AuthAction::CreateTempIndex { index_name, .. } => {
            Err(format!("CREATE INDEX {index_name}"))
        }
        AuthAction::CreateTrigger { trigger_name, .. }
        | AuthAction::CreateTempTrigger { trigger_name, .. } => {
            Err(format!("CREATE TRIGGER {trigger_name}"))
        }
        AuthAction::CreateVtable { table_name, .. } => {
            Err(format!("CREATE VIRTUAL TABLE {table_name}"))
        }
        AuthAction::DropTable { table_name } | AuthAction::DropTempTable { table_name } => {
            Err(format!("DROP TABLE {table_name}"))
        }
        AuthAction::DropView { view_name } | AuthAction::DropTempView { view_name } => {
            Err(format!("DROP VIEW {view_name}"))
        }
        AuthAction::DropIndex { index_name, .. } | AuthAction::DropTempIndex { index_name, .. } => {
            Err(format!("DROP INDEX {index_name}"))
        }
        AuthAction::DropTrigger { trigger_name, .. }
        | AuthAction::DropTempTrigger { trigger_name, .. } => {
            Err(format!("DROP TRIGGER {trigger_name}"))
        }
        AuthAction::DropVtable { table_name, .. } => Err(format!("DROP TABLE {table_name}")),
        AuthAction::Unknown { code, .. } => Err(format!("SQLite action {code}")),
        _ => Err("this statement".into()),
    }
}

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

/// The first action the authorizer refused, for the error message.
type Refused = Arc<Mutex<Option<String>>>;

/// Opens the store for `sql`: read-only, and locked down as the module documentation says.
fn open_read_only(args: &SqlArgs) -> anyhow::Result<(Connection, Refused)> {
    let conn = store::open_ro(&args.db)?;
    let lockdown = || -> rusqlite::Result<()> {
        // SAFETY: the handle is this open connection's, used for this one call; the variadic
        // arguments are the (int, int*) pair SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION expects.
        let rc = unsafe {
            ffi::sqlite3_db_config(
                conn.handle(),
                ffi::SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION,
                0 as std::ffi::c_int,
                std::ptr::null_mut::<std::ffi::c_int>(),
            )
        };
        if rc != ffi::SQLITE_OK {
            return Err(rusqlite::Error::SqliteFailure(ffi::Error::new(rc), None));
        }
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_ATTACH_CREATE, false)?;
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_ATTACH_WRITE, false)?;
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)?;
        conn.pragma_update(None, "query_only", true)
    };
    lockdown().with_context(|| format!("making `{}` read-only", args.db.display()))?;
    let refused: Refused = Arc::default();
    let first = Arc::clone(&refused);
    conn.authorizer(Some(move |ctx: AuthContext<'_>| {
        match authorize(&ctx.action) {
            Ok(()) => Authorization::Allow,
            Err(what) => {
                if let Ok(mut slot) = first.lock() {
                    slot.get_or_insert(what);
                }
                Authorization::Deny
            }
        }
    }))?;
    Ok((conn, refused))
}

/// The read-only error for `query`, if the authorizer refused something.
fn refusal(refused: &Refused, query: &str) -> Option<anyhow::Error> {
    let what = refused.lock().ok()?.clone()?;
    // CREATE first asks to write the schema table: name the statement instead.
    if what.ends_with("sqlite_master") || what.ends_with("sqlite_temp_master") {
        return Some(read_only_error(&statement_keywords(query), query));
    }
    Some(read_only_error(&what, query))
}

fn read_only_error(what: &str, query: &str) -> anyhow::Error {
    let mut shown: String = query.split_whitespace().collect::<Vec<_>>().join(" ");
    if let Some((cut, _)) = shown.char_indices().nth(200) {
        shown.truncate(cut);
        shown.push_str("...");
    }
    anyhow::anyhow!("`ctrace sql` is read-only: {what} is refused (query: {shown})")
}

/// The statement's leading keywords (`VACUUM`, `CREATE TEMP VIEW`), to name what it does.
fn statement_keywords(query: &str) -> String {
    #[rustfmt::skip]
    const KEYWORDS: &[&str] = &[
        "ALTER", "ANALYZE", "ATTACH", "BEGIN", "COMMIT", "CREATE", "DELETE", "DETACH", "DROP",
        "END", "INDEX", "INSERT", "PRAGMA", "REINDEX", "RELEASE", "REPLACE", "ROLLBACK",
        "SAVEPOINT", "TABLE", "TEMP", "TEMPORARY", "TRIGGER", "UNIQUE", "UPDATE", "VACUUM",
        "VIEW", "VIRTUAL",
    ];
    let words: Vec<String> = query
        .split_whitespace()
        .map(str::to_ascii_uppercase)
        .take_while(|w| KEYWORDS.contains(&w.as_str()))
        .collect();
    if words.is_empty() {
        "this statement".into()
    } else {
        words.join(" ")
    }
}

fn prepare<'c>(
    conn: &'c Connection,
    refused: &Refused,
    args: &SqlArgs,
) -> anyhow::Result<Statement<'c>> {
    let stmt = match conn.prepare(&args.query) {
        Ok(stmt) => stmt,
        Err(e) => {
            return Err(refusal(refused, &args.query).unwrap_or_else(|| {
                anyhow::Error::new(e).context(format!("preparing query on `{}`", args.db.display()))
            }))
        }
    };
    if !stmt.readonly() {
        return Err(read_only_error(
            &statement_keywords(&args.query),
            &args.query,
        ));
    }
    Ok(stmt)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Tsv,
    Csv,
    Json,
}

fn print_rows(args: &SqlArgs) -> anyhow::Result<ExitCode> {
    let (conn, refused) = open_read_only(args)?;
    let mut stmt = prepare(&conn, &refused, args)?;
    let format = match (args.json, args.csv) {
        (true, _) => Format::Json,
        (_, true) => Format::Csv,
        _ => Format::Tsv,
    };
    let names: Vec<String> = stmt.column_names().into_iter().map(String::from).collect();
    let mut rows = stmt.query([])?;
    // The first row is fetched before anything is printed: a refusal prints nothing.
    let mut next = next_row(&mut rows, &refused, &args.query)?;
    let mut out = io::BufWriter::new(io::stdout().lock());
    match format {
        Format::Tsv => writeln!(out, "{}", join(names.iter().map(|n| tsv_escape(n)), "\t"))?,
        Format::Csv => write!(out, "{}\r\n", join(names.iter().map(|n| csv_quote(n)), ","))?,
        Format::Json => write!(out, "[")?,
    }
    let mut count = 0usize;
    while let Some(row) = next {
        let mut values = Vec::with_capacity(names.len());
        for i in 0..names.len() {
            values.push(row.get_ref(i)?);
        }
        match format {
            Format::Tsv => {
                let fields = values.iter().map(|v| tsv_escape(&text(v)));
                writeln!(out, "{}", join(fields, "\t"))?;
            }
            Format::Csv => {
                let fields = values.iter().map(|v| csv_quote(&text(v)));
                write!(out, "{}\r\n", join(fields, ","))?;
            }
            Format::Json => {
                let fields = names.iter().zip(&values).map(|(name, value)| {
                    format!("{}:{}", serde_json::Value::from(name.as_str()), json(value))
                });
                let sep = if count == 0 { "\n" } else { ",\n" };
                write!(out, "{sep}{{{}}}", join(fields, ","))?;
            }
        }
        count += 1;
        next = next_row(&mut rows, &refused, &args.query)?;
    }
    if format == Format::Json {
        writeln!(out, "{}]", if count == 0 { "" } else { "\n" })?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// The next row; a refusal met while running (a pragma table runs its pragma) is named.
fn next_row<'r, 's>(
    rows: &'r mut Rows<'s>,
    refused: &Refused,
    query: &str,
) -> anyhow::Result<Option<&'r Row<'s>>> {
    rows.next()
        .map_err(|e| refusal(refused, query).unwrap_or_else(|| e.into()))
}

fn join(fields: impl Iterator<Item = String>, sep: &str) -> String {
    fields.collect::<Vec<_>>().join(sep)
}

/// A value as text: NULL is empty, blobs are `<N bytes>`.
fn text(value: &ValueRef<'_>) -> String {
    match *value {
        ValueRef::Null => String::new(),
        ValueRef::Integer(v) => v.to_string(),
        ValueRef::Real(v) => v.to_string(),
        ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
        ValueRef::Blob(b) => format!("<{} bytes>", b.len()),
    }
}

fn json(value: &ValueRef<'_>) -> serde_json::Value {
    match *value {
        ValueRef::Null => serde_json::Value::Null,
        ValueRef::Integer(v) => v.into(),
        ValueRef::Real(v) => {
            serde_json::Number::from_f64(v).map_or(serde_json::Value::Null, Into::into)
        }
        ValueRef::Text(_) | ValueRef::Blob(_) => text(value).into(),
    }
}

/// TSV: one line per row, so tabs, line breaks and the escape character itself are escaped.
pub fn tsv_escape(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    for c in field.chars() {
        match c {
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out
}

/// RFC 4180: a field with a comma, a double quote or a line break is quoted, quotes doubled.
pub fn csv_quote(field: &str) -> String {
    if field.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}
