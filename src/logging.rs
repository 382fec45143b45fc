//! Log lines on stderr through `tracing`; stdout is kept for command output.
//!
//! Every line reads `ctrace: [level: ]message` (`error: `, `warning: `, `debug: `; info has
//! no tag), so one-shot commands look like other Unix tools. The daemon (`ctrace trace`)
//! prefixes each line with a UTC timestamp. The level is `--log-level`, else `RUST_LOG`
//! (with `tracing` directives such as `ctrace=debug`), else `info`. A stderr that cannot be
//! written is ignored: a log line must never stop the reader or the writer.

use std::collections::HashSet;
use std::fmt;
use std::io::Write;
use std::sync::Mutex;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

/// How lines are dressed: the daemon's carry timestamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Command,
    Daemon,
}

/// Installs the global subscriber. `level` (from `--log-level`) overrides `RUST_LOG`.
pub fn init(style: Style, level: Option<&str>) {
    let filter = match level {
        Some(level) => EnvFilter::new(level),
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(QuietStderr)
        .event_format(Lines { style })
        .try_init();
}

struct Lines {
    style: Style,
}

impl<S, N> FormatEvent<S, N> for Lines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        if self.style == Style::Daemon {
            let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ");
            write!(writer, "{now} ")?;
        }
        let tag = match *event.metadata().level() {
            Level::ERROR => "error: ",
            Level::WARN => "warning: ",
            Level::INFO => "",
            Level::DEBUG => "debug: ",
            Level::TRACE => "trace: ",
        };
        write!(writer, "ctrace: {tag}")?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// stderr whose write errors (a full disk under a log file, a closed pipe, a file-size
/// limit) are swallowed instead of reaching the caller.
struct QuietStderr;

impl<'a> MakeWriter<'a> for QuietStderr {
    type Writer = Quiet;
    fn make_writer(&'a self) -> Quiet {
        Quiet
    }
}

struct Quiet;

impl Write for Quiet {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stderr().write_all(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}

/// Causes already warned about, for warnings that would otherwise repeat on every batch or
/// every Tracefile rewrite.
static SAID: Mutex<Option<HashSet<String>>> = Mutex::new(None);

/// True the first time `cause` is seen in this process: log only then.
pub fn first_time(cause: &str) -> bool {
    let mut said = SAID.lock().unwrap_or_else(|e| e.into_inner());
    said.get_or_insert_with(HashSet::new)
        .insert(cause.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_is_new_only_once() {
        assert!(first_time("logging test cause"));
        assert!(!first_time("logging test cause"));
        assert!(first_time("another logging test cause"));
    }
}
