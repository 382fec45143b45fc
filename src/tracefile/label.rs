//! From a `ctrace.tracefile` label value to a file under the data directory.
//!
//! Label values are chosen by whoever can start a container, while the daemon is root: the
//! result must stay inside the data directory. Absolute paths, `..` components and symlinks
//! anywhere on the way are refused; so are names a directory search for Tracefiles skips
//! (hidden ones, like temporary files, and the store's, its lock's and profiles' suffixes),
//! so that no label can name a file ctrace keeps, and windows shorter than an hour (a
//! pattern with `%S` would start a file, and a store row, every second).

use std::path::{Component, Path, PathBuf};

use chrono::format::{Item, StrftimeItems};
use chrono::{DateTime, TimeZone, Utc};

use crate::atomic_write::{write_beneath, WriteError};

pub const LABEL: &str = "ctrace.tracefile";

#[derive(Debug, thiserror::Error)]
pub enum LabelError {
    #[error("empty tracefile name")]
    Empty,
    #[error("`{0}` is not a valid strftime pattern")]
    BadPattern(String),
    #[error("`{0}` is absolute; a tracefile name must be relative to the data directory")]
    Absolute(String),
    #[error("`{0}` leaves the data directory (`..` component)")]
    ParentDir(String),
    #[error("`{0}` contains a NUL byte or an empty component")]
    Malformed(String),
    #[error(
        "`{0}` names a file ctrace keeps (hidden, or ending in .db, .db-wal, .db-shm, \
         .db-journal, .json or .lock)"
    )]
    Reserved(String),
    #[error(
        "`{pattern}` changes more often than once per epoch ({epoch}): a Tracefile window \
         cannot be shorter than the daemon's --epoch"
    )]
    WindowTooShort { pattern: String, epoch: String },
    #[error("`{0}` is the store or one of its files")]
    Store(String),
    #[error(transparent)]
    Write(#[from] WriteError),
}

/// A checked label value: a strftime pattern that expands to a relative, safe path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TracefilePattern(String);

impl TracefilePattern {
    pub fn parse(value: &str) -> Result<TracefilePattern, LabelError> {
        let value = value.trim();
        if value.is_empty() {
            return Err(LabelError::Empty);
        }
        if StrftimeItems::new(value).any(|item| matches!(item, Item::Error)) {
            return Err(LabelError::BadPattern(value.to_string()));
        }
        check_relative(value)?;
        // chrono parses some items it cannot format (`%#z`): refused here, not a panic later.
        if format(&Utc::now(), value).is_none() {
            return Err(LabelError::BadPattern(value.to_string()));
        }
        Ok(TracefilePattern(value.to_string()))
    }

    /// Refuses windows shorter than `epoch` (the daemon's --epoch, 1 h by default): every
    /// expansion within one epoch must agree. A pattern with `%S` under a 1 h epoch would
    /// start a file, and a store row, every second.
    pub fn check_window(&self, epoch: std::time::Duration) -> Result<(), LabelError> {
        let secs = i64::try_from(epoch.as_secs()).unwrap_or(i64::MAX).max(1);
        // An epoch boundary (epochs are aligned to Unix time), and points across the epoch.
        let start = 1_795_000_000 / secs * secs;
        let expand = |offset: i64| {
            DateTime::from_timestamp(start.saturating_add(offset), 0)
                .and_then(|at| format(&at, &self.0))
        };
        let first = expand(0);
        let inside = [1, 61, 3599, secs / 2, secs - 1];
        if inside
            .into_iter()
            .filter(|o| (0..secs).contains(o))
            .any(|o| expand(o) != first)
        {
            return Err(LabelError::WindowTooShort {
                pattern: self.0.clone(),
                epoch: humantime::format_duration(epoch).to_string(),
            });
        }
        Ok(())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The file name for the window that contains `at`, e.g. `myapp-2022-W01`.
    pub fn expand<Tz: TimeZone>(&self, at: &DateTime<Tz>) -> Result<String, LabelError>
    where
        Tz::Offset: std::fmt::Display,
    {
        let expanded = format(at, &self.0).ok_or_else(|| LabelError::BadPattern(self.0.clone()))?;
        check_relative(&expanded)?;
        Ok(expanded)
    }
}

/// `pattern` expanded at `at`, or `None` where chrono cannot format an item it parsed
/// (`%#z` is for parsing only): `to_string` would panic on that.
fn format<Tz: TimeZone>(at: &DateTime<Tz>, pattern: &str) -> Option<String>
where
    Tz::Offset: std::fmt::Display,
{
    use std::fmt::Write as _;
    let mut out = String::new();
    write!(out, "{}", at.format_with_items(StrftimeItems::new(pattern))).ok()?;
    Some(out)
}

fn check_relative(path: &str) -> Result<(), LabelError> {
    if path.contains('\0') {
        return Err(LabelError::Malformed(path.to_string()));
    }
    let p = Path::new(path);
    if p.is_absolute() {
        return Err(LabelError::Absolute(path.to_string()));
    }
    let mut normal = 0;
    for component in p.components() {
        match component {
            Component::Normal(_) => normal += 1,
            Component::CurDir => {}
            Component::ParentDir => return Err(LabelError::ParentDir(path.to_string())),
            Component::RootDir | Component::Prefix(_) => {
                return Err(LabelError::Absolute(path.to_string()))
            }
        }
    }
    if normal == 0 {
        return Err(LabelError::Malformed(path.to_string()));
    }
    let reserved = p.components().any(|c| match c {
        Component::Normal(name) => super::collect::is_skipped_name(&name.to_string_lossy()),
        _ => false,
    });
    if reserved {
        return Err(LabelError::Reserved(path.to_string()));
    }
    Ok(())
}

/// Writes `contents` to `data_dir/relative` atomically, creating directories on the way,
/// never through a symlink nor into a directory that is not ours (`atomic_write`).
pub fn write_inside(
    data_dir: &Path,
    relative: &str,
    contents: &[u8],
) -> Result<PathBuf, LabelError> {
    check_relative(relative)?;
    Ok(write_beneath(data_dir, Path::new(relative), contents)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    /// Found by tests/parsers_proptest.rs: chrono parses `%#z` but cannot format it, and
    /// `to_string` panicked (a label could stop the daemon).
    #[test]
    fn unformattable_items_are_refused_not_panics() {
        for value in ["%#z", "app-%#z", "x/%Y-%#z"] {
            assert!(
                matches!(
                    TracefilePattern::parse(value),
                    Err(LabelError::BadPattern(_))
                ),
                "{value}"
            );
        }
        let p = TracefilePattern(String::from("app-%#z"));
        assert!(matches!(
            p.expand(&Utc::now()),
            Err(LabelError::BadPattern(_))
        ));
    }

    #[test]
    fn hostile_labels_are_refused() {
        assert!(matches!(
            TracefilePattern::parse("/etc/passwd"),
            Err(LabelError::Absolute(_))
        ));
        assert!(matches!(
            TracefilePattern::parse("../x"),
            Err(LabelError::ParentDir(_))
        ));
        assert!(matches!(
            TracefilePattern::parse("a/../../x"),
            Err(LabelError::ParentDir(_))
        ));
        assert!(matches!(
            TracefilePattern::parse("%Q-bad"),
            Err(LabelError::BadPattern(_))
        ));
        assert!(TracefilePattern::parse("app/%Y-W%V").is_ok());
        for kept in [
            "ctrace.db",
            "ctrace.db-wal",
            "ctrace.db-shm",
            "sub/x.db-journal",
            "profile.json",
            "ctrace.db.lock",
            ".ctrace.lock",
            ".web.ctrace-tmp-1",
            ".hidden/web",
            "%Y.db",
        ] {
            assert!(
                matches!(TracefilePattern::parse(kept), Err(LabelError::Reserved(_))),
                "{kept}: {:?}",
                TracefilePattern::parse(kept)
            );
        }
    }

    #[test]
    fn windows_shorter_than_the_epoch_are_refused() {
        let hour = std::time::Duration::from_secs(3600);
        for fine in ["flood-%S", "x-%M", "%s", "t-%T", "%c", "%R", "a/%H-%M"] {
            let p = TracefilePattern::parse(fine).unwrap();
            assert!(
                matches!(p.check_window(hour), Err(LabelError::WindowTooShort { .. })),
                "{fine}"
            );
            // With a one-second epoch (tests) a per-second window is fine.
            assert!(
                p.check_window(std::time::Duration::from_secs(1)).is_ok(),
                "{fine}"
            );
        }
        for coarse in ["web", "web-%Y-%m-%d", "web-%Y-W%V", "web-%F-%H", "x%D"] {
            let p = TracefilePattern::parse(coarse).unwrap();
            assert!(p.check_window(hour).is_ok(), "{coarse}");
        }
        let day = TracefilePattern::parse("web-%F").unwrap();
        assert!(day
            .check_window(std::time::Duration::from_secs(86_400))
            .is_ok());
        let hourly = TracefilePattern::parse("web-%F-%H").unwrap();
        assert!(hourly
            .check_window(std::time::Duration::from_secs(86_400))
            .is_err());
    }

    #[test]
    fn strftime_expands_and_is_rechecked() {
        let at = Utc.with_ymd_and_hms(2022, 1, 5, 0, 0, 0).unwrap();
        let p = TracefilePattern::parse("myapp-%Y-W%V").unwrap();
        assert_eq!(p.expand(&at).unwrap(), "myapp-2022-W01");
        // %D expands to slashes: still checked as a path.
        let d = TracefilePattern::parse("x%D").unwrap();
        assert_eq!(d.expand(&at).unwrap(), "x01/05/22");
    }

    #[test]
    fn symlinks_on_the_way_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/tmp", dir.path().join("evil")).unwrap();
        let err = write_inside(dir.path(), "evil/file", b"x").unwrap_err();
        assert!(matches!(err, LabelError::Write(WriteError::Symlink { .. })));
        std::os::unix::fs::symlink("/tmp/target", dir.path().join("link")).unwrap();
        assert!(matches!(
            write_inside(dir.path(), "link", b"x"),
            Err(LabelError::Write(WriteError::Symlink { .. }))
        ));
        let ok = write_inside(dir.path(), "sub/dir/file", b"hello").unwrap();
        assert_eq!(std::fs::read(ok).unwrap(), b"hello");
    }
}
