//! Reading Tracefiles back: strict, because they are turned into security policy.
//!
//! The grammar is what [`Tracefile::render`] writes (and the original tool wrote):
//!
//! - a file is a sequence of sections; a section is a header line followed by one entry per
//!   line; a blank line ends a section (a known header also starts a new one without it);
//! - headers: `ARCH`, `CAPABILITIES`, `SYSCALLS` (x86_64) and `SYSCALLS:i386`,
//!   `SYSCALLS:x32`; each at most once, in any order;
//! - `ARCH` holds exactly one entry, `x86_64` (the only host architecture ctrace supports);
//! - `CAPABILITIES` entries are capability names spelt as in Tracefiles: lowercase, without
//!   `cap_` (`net_raw`), and known to this build;
//! - `SYSCALLS[:abi]` entries are system call names in that ABI's table (`_llseek` is an
//!   i386 name, not an x86_64 one);
//! - `ERRNO` entries are a system call name (of any ABI's table) and an errno, by name
//!   (`ENOSYS`) or number (1 to 4095): `clone3 ENOSYS`;
//! - surrounding whitespace and `\r` line ends are tolerated; lines starting with `#` are
//!   comments; anything else (unknown header, unknown name, control characters, bytes that
//!   are not UTF-8) is an error naming the file and line.
//!
//! Files larger than [`MAX_TRACEFILE_BYTES`] are refused before they are read.
//!
//! Directories are searched recursively ([`collect_tracefiles`]). Every regular file found
//! is a Tracefile and must parse, except files the daemon keeps next to Tracefiles:
//! hidden names (a leading `.`, e.g. temporary `.NAME.ctrace-tmp-*` files and hidden
//! directories), the store (`*.db`, `*.db-wal`, `*.db-shm`, `*.db-journal`) and generated
//! profiles (`*.json`). Symbolic links inside a directory are followed to files, never to
//! directories (no loops). An explicitly named path is always read, whatever its name.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use crate::abi::Abi;
use crate::names;
pub use crate::tracefile::error::ParseError;
use crate::tracefile::{Tracefile, ARCH, CAPABILITIES, ERRNO};

/// A Tracefile of every syscall of every ABI is ~30 KiB; anything near this is not one.
pub const MAX_TRACEFILE_BYTES: u64 = 16 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Arch,
    Capabilities,
    Syscalls(Abi),
    Errno,
}

impl Section {
    fn from_header(text: &str) -> Option<Section> {
        if text == ARCH {
            return Some(Section::Arch);
        }
        if text == CAPABILITIES {
            return Some(Section::Capabilities);
        }
        if text == ERRNO {
            return Some(Section::Errno);
        }
        Abi::ALL
            .into_iter()
            .find(|abi| Tracefile::syscall_section(*abi) == text)
            .map(Section::Syscalls)
    }
}

/// Reads and parses one Tracefile, refusing huge files before reading them.
pub fn read_tracefile(path: &Path) -> Result<Tracefile, ParseError> {
    let file = File::open(path).map_err(ParseError::io(path))?;
    let meta = file.metadata().map_err(ParseError::io(path))?;
    if meta.is_dir() {
        return Err(ParseError::NotAFile {
            path: path.to_path_buf(),
        });
    }
    if meta.is_file() && meta.len() > MAX_TRACEFILE_BYTES {
        return Err(ParseError::TooLarge {
            path: path.to_path_buf(),
            size: meta.len(),
            limit: MAX_TRACEFILE_BYTES,
        });
    }
    // Pipes and character devices have no size: never read more than the limit from them.
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(MAX_TRACEFILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(ParseError::io(path))?;
    if bytes.len() as u64 > MAX_TRACEFILE_BYTES {
        return Err(ParseError::TooLarge {
            path: path.to_path_buf(),
            size: bytes.len() as u64,
            limit: MAX_TRACEFILE_BYTES,
        });
    }
    parse_bytes(&bytes, path)
}

/// Parses Tracefile bytes; `path` only names the source in errors.
pub fn parse_bytes(bytes: &[u8], path: &Path) -> Result<Tracefile, ParseError> {
    match std::str::from_utf8(bytes) {
        Ok(text) => parse_str(text, path),
        Err(err) => {
            let before = &bytes[..err.valid_up_to()];
            let line = before.iter().filter(|b| **b == b'\n').count() + 1;
            Err(ParseError::NotText {
                path: path.to_path_buf(),
                line,
            })
        }
    }
}

/// Parses Tracefile text; `path` only names the source in errors.
pub fn parse_str(text: &str, path: &Path) -> Result<Tracefile, ParseError> {
    let path_buf = || path.to_path_buf();
    let mut out = Tracefile::default();
    let mut current: Option<(Section, usize)> = None;
    let mut seen: Vec<Section> = Vec::new();
    let mut arch: Option<String> = None;
    let mut arch_header_line = 0;
    let mut any_section = false;

    for (index, raw) in text.split('\n').enumerate() {
        let line = index + 1;
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        if let Some(c) = raw.chars().find(|c| c.is_control() && *c != '\t') {
            return Err(ParseError::ControlCharacter {
                path: path_buf(),
                line,
                byte: c as u32,
            });
        }
        let text = raw.trim();
        if text.is_empty() {
            current = None;
            continue;
        }
        if text.starts_with('#') {
            continue;
        }
        let header = Section::from_header(text);
        let section = match (current, header) {
            (_, Some(section)) => {
                if seen.contains(&section) {
                    return Err(ParseError::DuplicateSection {
                        path: path_buf(),
                        line,
                        name: text.to_string(),
                    });
                }
                seen.push(section);
                any_section = true;
                if section == Section::Arch {
                    arch_header_line = line;
                }
                if let Section::Syscalls(abi) = section {
                    out.syscalls.entry(abi).or_default();
                }
                current = Some((section, line));
                continue;
            }
            (None, None) => {
                return Err(ParseError::UnknownSection {
                    path: path_buf(),
                    line,
                    name: text.to_string(),
                })
            }
            (Some((section, _)), None) => section,
        };
        if section == Section::Errno {
            let mut words = text.split_whitespace();
            let entry = match (words.next(), words.next(), words.next()) {
                (Some(name), Some(errno), None) if names::is_syscall_name(name) => {
                    names::errno_number(errno).map(|e| (name, e))
                }
                _ => None,
            };
            let Some((name, errno)) = entry else {
                return Err(ParseError::BadErrno {
                    path: path_buf(),
                    line,
                    text: text.to_string(),
                });
            };
            out.add_errno(name, errno);
            continue;
        }
        if text.split_whitespace().nth(1).is_some() {
            return Err(ParseError::NotAName {
                path: path_buf(),
                line,
                text: text.to_string(),
            });
        }
        match section {
            Section::Arch => {
                if let Some(first) = &arch {
                    if first != text {
                        return Err(ParseError::SecondArch {
                            path: path_buf(),
                            line,
                            arch: text.to_string(),
                        });
                    }
                }
                if text != Abi::NATIVE.name() {
                    return Err(ParseError::UnsupportedArch {
                        path: path_buf(),
                        line,
                        arch: text.to_string(),
                    });
                }
                arch = Some(text.to_string());
            }
            Section::Capabilities => {
                let known =
                    names::capability_by_name(text).map(|cap| names::short_capability_name(&cap));
                match known {
                    Some(short) if short == text => out.add_capability(text),
                    Some(short) => {
                        return Err(ParseError::UnknownCapability {
                            path: path_buf(),
                            line,
                            name: text.to_string(),
                            hint: format!(" (Tracefiles spell it `{short}`)"),
                        })
                    }
                    None => {
                        return Err(ParseError::UnknownCapability {
                            path: path_buf(),
                            line,
                            name: text.to_string(),
                            hint: " (see `ctrace capability`)".to_string(),
                        })
                    }
                }
            }
            Section::Errno => {}
            Section::Syscalls(abi) => {
                if names::syscall_number(abi, text).is_some() {
                    out.add_syscall(abi, text);
                } else {
                    return Err(ParseError::UnknownSyscall {
                        path: path_buf(),
                        line,
                        abi,
                        name: text.to_string(),
                        hint: syscall_hint(abi, text),
                    });
                }
            }
        }
    }
    if seen.contains(&Section::Arch) && arch.is_none() {
        return Err(ParseError::EmptyArch {
            path: path_buf(),
            line: arch_header_line,
        });
    }
    if !any_section {
        return Err(ParseError::Empty { path: path_buf() });
    }
    // One form for one meaning, as `render` writes it: the native ABI always has its set,
    // another ABI only with names (an empty section says nothing).
    out.syscalls.entry(Abi::NATIVE).or_default();
    out.syscalls
        .retain(|abi, names| *abi == Abi::NATIVE || !names.is_empty());
    Ok(out)
}

fn syscall_hint(abi: Abi, name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    if lower != name && names::syscall_number(abi, &lower).is_some() {
        return format!(" (names are lowercase: `{lower}`)");
    }
    match Abi::ALL
        .into_iter()
        .find(|other| *other != abi && names::syscall_number(*other, name).is_some())
    {
        Some(other) => format!(
            " (it is an {other} name: put it in section `{}`)",
            Tracefile::syscall_section(other)
        ),
        None => format!(" (see `ctrace syscall --abi {abi}`)"),
    }
}

pub use super::collect::{collect_tracefiles, is_skipped_name, read_union, SKIPPED_SUFFIXES};

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
