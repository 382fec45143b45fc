//! From a `ctrace.tracefile` label value to a file under the data directory.
//!
//! Label values are chosen by whoever can start a container, while the daemon is root: the
//! result must stay inside the data directory. Absolute paths, `..` components and symlinks
//! anywhere on the way are refused.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

use chrono::format::{Item, StrftimeItems};
use chrono::{DateTime, TimeZone};

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
    #[error("`{path}` goes through a symlink at `{link}`; refused")]
    Symlink { path: String, link: PathBuf },
    #[error("`{path}`: {source}")]
    Io { path: PathBuf, source: io::Error },
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
        Ok(TracefilePattern(value.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The file name for the window that contains `at`, e.g. `myapp-2022-W01`.
    pub fn expand<Tz: TimeZone>(&self, at: &DateTime<Tz>) -> Result<String, LabelError>
    where
        Tz::Offset: std::fmt::Display,
    {
        let expanded = at
            .format_with_items(StrftimeItems::new(&self.0))
            .to_string();
        check_relative(&expanded)?;
        Ok(expanded)
    }
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
    Ok(())
}

/// Writes `contents` to `data_dir/relative` atomically (temp file + rename), creating
/// directories on the way and refusing to pass through any symlink.
pub fn write_inside(
    data_dir: &Path,
    relative: &str,
    contents: &[u8],
) -> Result<PathBuf, LabelError> {
    check_relative(relative)?;
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| LabelError::Io { path, source }
    };
    let mut dir = data_dir.to_path_buf();
    let components: Vec<_> = Path::new(relative)
        .components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .collect();
    let (file, parents) = components.split_last().ok_or(LabelError::Empty)?;
    for part in parents {
        dir.push(part);
        match fs::symlink_metadata(&dir) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(LabelError::Symlink {
                    path: relative.to_string(),
                    link: dir,
                })
            }
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                return Err(io_err(&dir)(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "exists and is not a directory",
                )))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir(&dir).map_err(io_err(&dir))?
            }
            Err(e) => return Err(io_err(&dir)(e)),
        }
    }
    let target = dir.join(file);
    if let Ok(meta) = fs::symlink_metadata(&target) {
        if meta.file_type().is_symlink() {
            return Err(LabelError::Symlink {
                path: relative.to_string(),
                link: target,
            });
        }
    }
    let tmp = dir.join(format!(
        ".{}.ctrace-tmp-{}",
        file.as_os_str().to_string_lossy(),
        std::process::id()
    ));
    let written = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)
        // No fsync: a Tracefile is re-materialized from the store; temp + rename keeps
        // readers from ever seeing a partial file.
        .and_then(|mut f| f.write_all(contents));
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(io_err(&tmp)(e));
    }
    fs::rename(&tmp, &target).map_err(io_err(&target))?;
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

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
        assert!(matches!(err, LabelError::Symlink { .. }));
        std::os::unix::fs::symlink("/tmp/target", dir.path().join("link")).unwrap();
        assert!(matches!(
            write_inside(dir.path(), "link", b"x"),
            Err(LabelError::Symlink { .. })
        ));
        let ok = write_inside(dir.path(), "sub/dir/file", b"hello").unwrap();
        assert_eq!(std::fs::read(ok).unwrap(), b"hello");
    }
}
