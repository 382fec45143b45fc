//! What a container's own seccomp filter answers for the calls it refuses.
//!
//! Seccomp acts before the `sys_enter` tracepoint, so a call the traced container's profile
//! refused (Docker's default answers `clone3` with ENOSYS; runc answers numbers above the
//! profile's highest known one with ENOSYS) never reaches the tracer. A generated profile must
//! still answer it the same way. The errno probe (`errno_probe.c`, run by [`run_probe`] in a
//! container with the traced container's seccomp settings) measures every x86_64 and i386
//! number without executing any: see the C file for the method and output format.

use std::collections::{BTreeMap, BTreeSet};

use crate::abi::Abi;
use crate::names;

pub mod probe;
pub mod target;

pub use probe::{run_probe, ProbeError};
pub use target::ProbeTarget;

/// Numbers probed per ABI (0..PROBED_NUMBERS); the probe's `done` line must say so.
pub const PROBED_NUMBERS: u32 = 512;
/// The ABIs the probe measures, each reported by a `done` or an ABI-wide `killed` line.
pub const PROBED_ABIS: [Abi; 2] = [Abi::X86_64, Abi::I386];

const EPERM: u32 = libc::EPERM as u32;
const ENOSYS: u32 = libc::ENOSYS as u32;
/// Errno values are 1..=4095 (the kernel's MAX_ERRNO).
const MAX_ERRNO: u32 = 4095;

/// The probe's findings for one seccomp setting.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Refusals {
    /// ABI → number → errno, for every number the filter answered with an errno.
    pub errnos: BTreeMap<Abi, BTreeMap<u32, u32>>,
    /// ABIs whose calls cannot be made at all: every call killed the thread (architecture
    /// not in the filter), or the kernel does not run that ABI.
    pub killed: BTreeSet<Abi>,
    /// ABI → numbers on which the filter killed the calling thread (SCMP_ACT_KILL), in ABIs
    /// otherwise probed.
    pub killed_calls: BTreeMap<Abi, BTreeSet<u32>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("errno probe output, line {line}: {reason}: `{text}`")]
    Line {
        line: usize,
        text: String,
        reason: &'static str,
    },
    #[error("errno probe output: no result for {0} (the probe did not complete)")]
    Incomplete(Abi),
}

impl Refusals {
    /// Parses the probe's stdout. Strict: every line must be known, every ABI of
    /// [`PROBED_ABIS`] must end with `done <abi> 512` or an ABI-wide `killed`/`unsupported`,
    /// and nothing about an ABI may follow its end.
    pub fn parse(output: &str) -> Result<Refusals, ParseError> {
        let mut refusals = Refusals::default();
        let mut ended: BTreeSet<Abi> = BTreeSet::new();
        for (index, text) in output.lines().enumerate() {
            let bad = |reason| ParseError::Line {
                line: index + 1,
                text: text.to_string(),
                reason,
            };
            let words: Vec<&str> = text.split_whitespace().collect();
            let (&kind, rest) = words.split_first().ok_or_else(|| bad("empty line"))?;
            let (&abi, args) = rest.split_first().ok_or_else(|| bad("no ABI"))?;
            let abi: Abi = abi.parse().map_err(|_| bad("unknown ABI"))?;
            if !PROBED_ABIS.contains(&abi) {
                return Err(bad("the probe does not measure this ABI"));
            }
            if ended.contains(&abi) {
                return Err(bad("a line about an ABI after its end"));
            }
            let numbers: Vec<u32> = args
                .iter()
                .map(|a| a.parse::<u32>())
                .collect::<Result<_, _>>()
                .map_err(|_| bad("not a number"))?;
            match (kind, numbers.as_slice()) {
                ("refused", &[nr, errno]) => {
                    if nr >= PROBED_NUMBERS {
                        return Err(bad("number out of the probed range"));
                    }
                    if errno == 0 || errno > MAX_ERRNO {
                        return Err(bad("not an errno"));
                    }
                    let seen = refusals
                        .killed_calls
                        .get(&abi)
                        .is_some_and(|k| k.contains(&nr));
                    let by_nr = refusals.errnos.entry(abi).or_default();
                    if seen || by_nr.insert(nr, errno).is_some() {
                        return Err(bad("number reported twice"));
                    }
                }
                ("killed", &[nr]) => {
                    if nr >= PROBED_NUMBERS {
                        return Err(bad("number out of the probed range"));
                    }
                    let refused = refusals
                        .errnos
                        .get(&abi)
                        .is_some_and(|e| e.contains_key(&nr));
                    if refused || !refusals.killed_calls.entry(abi).or_default().insert(nr) {
                        return Err(bad("number reported twice"));
                    }
                }
                ("done", &[count]) => {
                    if count != PROBED_NUMBERS {
                        return Err(bad("unexpected count of probed numbers"));
                    }
                    ended.insert(abi);
                }
                ("killed" | "unsupported", &[]) => {
                    let partial = refusals.errnos.contains_key(&abi)
                        || refusals.killed_calls.contains_key(&abi);
                    if partial {
                        return Err(bad("an ABI-wide end after per-number results"));
                    }
                    refusals.killed.insert(abi);
                    ended.insert(abi);
                }
                _ => return Err(bad("unknown line")),
            }
        }
        if let Some(abi) = PROBED_ABIS.into_iter().find(|a| !ended.contains(a)) {
            return Err(ParseError::Incomplete(abi));
        }
        Ok(refusals)
    }

    /// Syscall name → errno, for every refused number with a name whose errno is not EPERM.
    /// A name refused with different errnos in different ABIs gets ENOSYS if either is
    /// ENOSYS, otherwise the lowest.
    pub fn by_name(&self) -> BTreeMap<String, u32> {
        let mut out: BTreeMap<String, u32> = BTreeMap::new();
        for (&abi, by_nr) in &self.errnos {
            for (&nr, &errno) in by_nr {
                if errno == EPERM {
                    continue;
                }
                let Some(name) = names::syscall_name(abi, nr) else {
                    continue;
                };
                out.entry(name.to_string())
                    .and_modify(|e| *e = merge(*e, errno))
                    .or_insert(errno);
            }
        }
        out
    }

    /// The syscall names of `abi` (`crate::names`) on whose numbers the filter neither
    /// answered an errno nor killed the thread: what the setting allows. Empty for an ABI
    /// killed or unsupported as a whole, and for one the probe does not measure (x32).
    /// The numbers the probe exempts (x86_64 `uretprobe`, `uprobe`) count as allowed: since
    /// Linux 6.13 seccomp lets them through unfiltered (errno_probe.c).
    pub fn allowed_names(&self, abi: Abi) -> BTreeSet<String> {
        if !PROBED_ABIS.contains(&abi) || self.killed.contains(&abi) {
            return BTreeSet::new();
        }
        let refused = self.errnos.get(&abi);
        let killed = self.killed_calls.get(&abi);
        names::syscalls(abi)
            .into_iter()
            .filter(|&(nr, _)| {
                nr < PROBED_NUMBERS
                    && !refused.is_some_and(|r| r.contains_key(&nr))
                    && !killed.is_some_and(|k| k.contains(&nr))
            })
            .map(|(_, name)| name.to_string())
            .collect()
    }

    /// [`Refusals::allowed_names`] of every probed ABI (killed ones with no names), as the
    /// store keeps it (`refusals.allowed`).
    pub fn allowed(&self) -> BTreeMap<Abi, BTreeSet<String>> {
        PROBED_ABIS
            .into_iter()
            .map(|abi| (abi, self.allowed_names(abi)))
            .collect()
    }
}

fn merge(a: u32, b: u32) -> u32 {
    if a == ENOSYS || b == ENOSYS {
        ENOSYS
    } else {
        a.min(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Refusals, ParseError> {
        Refusals::parse(text)
    }

    const DEFAULTISH: &str = "refused x86_64 165 1\nrefused x86_64 435 38\n\
        refused x86_64 452 38\nrefused x86_64 500 38\ndone x86_64 512\n\
        refused i386 21 1\nrefused i386 435 38\ndone i386 512\n";

    #[test]
    fn parses_refusals_per_abi() {
        let r = parse(DEFAULTISH).unwrap();
        assert_eq!(r.errnos[&Abi::X86_64].len(), 4);
        assert_eq!(r.errnos[&Abi::X86_64][&435], 38);
        assert_eq!(r.errnos[&Abi::I386][&21], 1);
        assert!(r.killed.is_empty());
        assert!(r.killed_calls.is_empty());
    }

    #[test]
    fn nothing_refused_is_empty() {
        let r = parse("done x86_64 512\ndone i386 512\n").unwrap();
        assert_eq!(r, Refusals::default());
    }

    #[test]
    fn killed_abi_and_killed_calls() {
        let r = parse("killed x86_64 169\nrefused x86_64 258 95\ndone x86_64 512\nkilled i386\n")
            .unwrap();
        assert_eq!(r.killed, BTreeSet::from([Abi::I386]));
        assert_eq!(r.killed_calls[&Abi::X86_64], BTreeSet::from([169]));
        assert_eq!(r.errnos[&Abi::X86_64][&258], 95);
        let r = parse("done x86_64 512\nunsupported i386\n").unwrap();
        assert_eq!(r.killed, BTreeSet::from([Abi::I386]));
    }

    #[test]
    fn an_unfinished_probe_is_an_error() {
        for text in [
            "",
            "refused x86_64 435 38\n",
            "refused x86_64 435 38\ndone x86_64 512\n",
            "done i386 512\n",
        ] {
            assert!(
                matches!(parse(text), Err(ParseError::Incomplete(_))),
                "{text:?}"
            );
        }
    }

    #[test]
    fn malformed_lines_are_errors() {
        let end = "done x86_64 512\ndone i386 512\n";
        for bad in [
            "refused x86_64 435\n",
            "refused x86_64 435 38 1\n",
            "refused x86_64 -1 38\n",
            "refused x86_64 512 38\n",
            "refused x86_64 435 0\n",
            "refused x86_64 435 4096\n",
            "refused x86_64 435 ENOSYS\n",
            "refused x32 435 38\n",
            "refused arm64 435 38\n",
            "refused x86_64 435 38\nrefused x86_64 435 38\n",
            "killed x86_64 435\nrefused x86_64 435 38\n",
            "refused x86_64 435 38\nkilled x86_64\n",
            "done x86_64 511\n",
            "allowed x86_64 0\n",
            "\n",
            "refused\n",
        ] {
            let text = format!("{bad}{end}");
            assert!(
                matches!(parse(&text), Err(ParseError::Line { .. })),
                "{text:?}"
            );
        }
        assert!(matches!(
            parse("done x86_64 512\nrefused x86_64 435 38\ndone i386 512\n"),
            Err(ParseError::Line { line: 2, .. })
        ));
    }

    #[test]
    fn by_name_skips_eperm_and_unnamed_numbers() {
        let names = parse(DEFAULTISH).unwrap().by_name();
        // 165 (mount) and i386 21 (mount) are EPERM; 500 has no name.
        assert_eq!(
            names,
            BTreeMap::from([("clone3".to_string(), 38), ("fchmodat2".to_string(), 38)])
        );
    }

    #[test]
    fn allowed_names_are_the_named_numbers_neither_refused_nor_killed() {
        let nr = |abi, name| names::syscall_number(abi, name).unwrap();
        let text = format!(
            "refused x86_64 {} 1\nkilled x86_64 {}\nrefused x86_64 500 38\ndone x86_64 512\n\
             refused i386 {} 1\ndone i386 512\n",
            nr(Abi::X86_64, "mount"),
            nr(Abi::X86_64, "kexec_load"),
            nr(Abi::I386, "getpid"),
        );
        let r = parse(&text).unwrap();
        let x86_64 = r.allowed_names(Abi::X86_64);
        assert!(x86_64.contains("getpid") && x86_64.contains("read"));
        assert!(!x86_64.contains("mount") && !x86_64.contains("kexec_load"));
        // 500 has no name: nothing else is missing.
        assert_eq!(x86_64.len(), names::syscalls(Abi::X86_64).len() - 2);
        let i386 = r.allowed_names(Abi::I386);
        assert!(!i386.contains("getpid") && i386.contains("mount"));
        assert_eq!(i386.len(), names::syscalls(Abi::I386).len() - 1);
        assert!(r.allowed_names(Abi::X32).is_empty());
        assert_eq!(
            r.allowed().keys().copied().collect::<Vec<_>>(),
            [Abi::X86_64, Abi::I386]
        );
    }

    #[test]
    fn a_killed_abi_allows_nothing() {
        let r = parse("done x86_64 512\nkilled i386\n").unwrap();
        assert!(r.allowed_names(Abi::I386).is_empty());
        assert_eq!(
            r.allowed_names(Abi::X86_64).len(),
            names::syscalls(Abi::X86_64).len()
        );
        let r = parse("done x86_64 512\nunsupported i386\n").unwrap();
        assert!(r.allowed()[&Abi::I386].is_empty());
    }

    #[test]
    fn by_name_prefers_enosys_then_the_lowest() {
        let mut r = Refusals::default();
        let mkdir64 = names::syscall_number(Abi::X86_64, "mkdir").unwrap();
        let mkdir32 = names::syscall_number(Abi::I386, "mkdir").unwrap();
        let chdir64 = names::syscall_number(Abi::X86_64, "chdir").unwrap();
        let chdir32 = names::syscall_number(Abi::I386, "chdir").unwrap();
        let open64 = names::syscall_number(Abi::X86_64, "open").unwrap();
        let open32 = names::syscall_number(Abi::I386, "open").unwrap();
        r.errnos.insert(
            Abi::X86_64,
            BTreeMap::from([(mkdir64, 95), (chdir64, 13), (open64, 1)]),
        );
        r.errnos.insert(
            Abi::I386,
            BTreeMap::from([(mkdir32, 38), (chdir32, 22), (open32, 13)]),
        );
        let names = r.by_name();
        assert_eq!(names["mkdir"], 38);
        assert_eq!(names["chdir"], 13);
        // EPERM in one ABI is left out; the other ABI's errno stands.
        assert_eq!(names["open"], 13);
        assert_eq!(names.len(), 3);
    }
}
