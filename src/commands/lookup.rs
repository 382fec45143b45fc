//! `ctrace syscall` and `ctrace capability`: look names and numbers up in the tables built
//! into ctrace (the `syscalls` and `caps` crates), no kernel headers needed.
//!
//! A number prints that entry; a name prints every entry containing it (`mkdir` → `mkdir`,
//! `mkdirat`); no query prints the whole table. One entry per line, tab-separated:
//! `83<TAB>mkdir` and `0<TAB>chown<TAB>CAP_CHOWN` (the Tracefile spelling, then the
//! kernel's).

use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::bail;

use crate::abi::Abi;
use crate::cli::{LookupArgs, SyscallLookupArgs};
use crate::names;

/// x32 system call numbers as the kernel sees them carry this bit.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

pub fn syscall(args: SyscallLookupArgs) -> anyhow::Result<ExitCode> {
    let matches = find_syscalls(args.abi, args.query.as_deref())?;
    let mut out = io::stdout().lock();
    for (nr, name) in matches {
        writeln!(out, "{nr}\t{name}")?;
    }
    Ok(ExitCode::SUCCESS)
}

pub fn capability(args: LookupArgs) -> anyhow::Result<ExitCode> {
    let matches = find_capabilities(args.query.as_deref())?;
    let mut out = io::stdout().lock();
    for (nr, short, full) in matches {
        writeln!(out, "{nr}\t{short}\t{full}")?;
    }
    Ok(ExitCode::SUCCESS)
}

fn parse_number(query: &str) -> Option<u32> {
    if let Some(hex) = query
        .strip_prefix("0x")
        .or_else(|| query.strip_prefix("0X"))
    {
        u32::from_str_radix(hex, 16).ok()
    } else if query.bytes().all(|b| b.is_ascii_digit()) {
        query.parse().ok()
    } else {
        None
    }
}

fn find_syscalls(abi: Abi, query: Option<&str>) -> anyhow::Result<Vec<(u32, &'static str)>> {
    let table = names::syscalls(abi);
    let Some(query) = query.map(str::trim) else {
        return Ok(table);
    };
    if let Some(mut nr) = parse_number(query) {
        if abi == Abi::X32 {
            nr &= !X32_SYSCALL_BIT;
        }
        return match names::syscall_name(abi, nr) {
            Some(name) => Ok(vec![(nr, name)]),
            None => bail!("no system call number {query} in the {abi} table"),
        };
    }
    let needle = query.to_ascii_lowercase();
    let found: Vec<(u32, &'static str)> = table
        .into_iter()
        .filter(|(_, name)| name.contains(&needle))
        .collect();
    if found.is_empty() {
        bail!("no {abi} system call matches `{query}`");
    }
    Ok(found)
}

fn find_capabilities(query: Option<&str>) -> anyhow::Result<Vec<(u8, String, String)>> {
    let all: Vec<(u8, String, String)> = names::capabilities()
        .into_iter()
        .map(|cap| {
            (
                cap.index(),
                names::short_capability_name(&cap),
                cap.to_string(),
            )
        })
        .collect();
    let Some(query) = query.map(str::trim) else {
        return Ok(all);
    };
    if let Some(nr) = parse_number(query) {
        let found: Vec<_> = all
            .into_iter()
            .filter(|(i, _, _)| u32::from(*i) == nr)
            .collect();
        if found.is_empty() {
            bail!("no capability number {query}");
        }
        return Ok(found);
    }
    let lower = query.to_ascii_lowercase();
    let needle = lower.strip_prefix("cap_").unwrap_or(&lower);
    let found: Vec<_> = all
        .into_iter()
        .filter(|(_, short, _)| short.contains(needle))
        .collect();
    if found.is_empty() {
        bail!("no capability matches `{query}`");
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syscalls_by_number_and_name() {
        assert_eq!(
            find_syscalls(Abi::X86_64, Some("83")).unwrap(),
            [(83, "mkdir")]
        );
        assert_eq!(
            find_syscalls(Abi::I386, Some("39")).unwrap(),
            [(39, "mkdir")]
        );
        assert_eq!(
            find_syscalls(Abi::X32, Some("0x40000053")).unwrap(),
            [(83, "mkdir")]
        );
        let mk = find_syscalls(Abi::X86_64, Some("MKDIR")).unwrap();
        assert!(
            mk.contains(&(83, "mkdir")) && mk.contains(&(258, "mkdirat")),
            "{mk:?}"
        );
        assert!(find_syscalls(Abi::X86_64, Some("99999")).is_err());
        assert!(find_syscalls(Abi::X86_64, Some("nosuchcall")).is_err());
        assert!(find_syscalls(Abi::X86_64, None).unwrap().len() > 300);
    }

    #[test]
    fn capabilities_by_number_and_name() {
        let chown = find_capabilities(Some("0")).unwrap();
        assert_eq!(chown, [(0, "chown".to_string(), "CAP_CHOWN".to_string())]);
        let admin = find_capabilities(Some("CAP_SYS_ADMIN")).unwrap();
        assert_eq!(admin[0].0, 21);
        assert!(find_capabilities(Some("net")).unwrap().len() >= 4);
        assert!(find_capabilities(Some("99")).is_err());
        assert!(find_capabilities(Some("fly")).is_err());
        assert_eq!(
            find_capabilities(None).unwrap().len(),
            names::capabilities().len()
        );
    }
}
