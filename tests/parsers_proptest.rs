//! Property tests: the parsers of untrusted text never panic, and what they accept is what
//! they promise. Tracefiles (arbitrary bytes, and valid files mutated line by line) and the
//! errno probe's output (tests/label_time_proptest.rs: label patterns and store times).
//!
//! 512 cases per property by default; `PROPTEST_CASES=N` sets another base count. Failures
//! are not persisted to files: a failing case found here becomes a unit test next to its
//! parser.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::sample::{select, subsequence, Index};

use common::properties::scaled_config;
use ctrace::abi::Abi;
use ctrace::names;
use ctrace::refusals::{Refusals, PROBED_ABIS, PROBED_NUMBERS};
use ctrace::tracefile::parse::{parse_bytes, parse_str};
use ctrace::tracefile::Tracefile;

fn path() -> &'static Path {
    Path::new("prop")
}

fn syscall_names(abi: Abi) -> Vec<String> {
    names::syscalls(abi)
        .into_iter()
        .map(|(_, n)| n.to_string())
        .collect()
}

fn capability_names() -> Vec<String> {
    names::capabilities()
        .iter()
        .map(names::short_capability_name)
        .collect()
}

fn any_syscall_name() -> impl Strategy<Value = String> {
    let mut all: Vec<String> = Abi::ALL.into_iter().flat_map(syscall_names).collect();
    all.sort();
    all.dedup();
    select(all)
}

/// A random valid Tracefile, as `parse` returns them: the native section always present
/// (its header is always written), other ABIs only when not empty.
fn tracefile() -> impl Strategy<Value = Tracefile> {
    let caps = capability_names();
    let set = |names: Vec<String>, max: usize| {
        let max = max.min(names.len());
        subsequence(names, 0..=max).prop_map(|v| v.into_iter().collect::<BTreeSet<_>>())
    };
    let errnos = btree_map(any_syscall_name(), 1u32..=4095, 0..6);
    (
        set(caps.clone(), caps.len()),
        set(syscall_names(Abi::X86_64), 60),
        set(syscall_names(Abi::I386), 20),
        set(syscall_names(Abi::X32), 5),
        errnos,
    )
        .prop_map(|(capabilities, native, i386, x32, errnos)| {
            let mut syscalls = BTreeMap::new();
            syscalls.insert(Abi::X86_64, native);
            for (abi, names) in [(Abi::I386, i386), (Abi::X32, x32)] {
                if !names.is_empty() {
                    syscalls.insert(abi, names);
                }
            }
            Tracefile {
                capabilities,
                syscalls,
                errnos,
            }
        })
}

#[rustfmt::skip]
const LINES: &[&str] = &[
    "ARCH", "CAPABILITIES", "SYSCALLS", "SYSCALLS:i386", "SYSCALLS:x32", "SYSCALLS:arm", "ERRNO",
    "x86_64", "i386", "", " ", "#", "# comment", "\r", "\t", "NOTASECTION",
];

/// A line that may or may not belong in a Tracefile.
fn line() -> impl Strategy<Value = String> {
    prop_oneof![
        select(LINES).prop_map(String::from),
        any_syscall_name(),
        select(capability_names()),
        "[ -~\t\r]{0,24}",
        any::<String>(),
    ]
}

/// An `ERRNO` entry: mostly well-formed, sometimes not.
fn errno_entry() -> impl Strategy<Value = String> {
    let name = prop_oneof![any_syscall_name(), "[a-z_0-9]{0,12}"];
    let errno = prop_oneof![
        select(vec!["ENOSYS", "EPERM", "EACCES", "enosys", "EFAKE"]).prop_map(String::from),
        (0u32..5000).prop_map(|n| n.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        "[ -~]{0,6}",
    ];
    (name, errno, proptest::option::of("[ -~]{0,6}")).prop_map(|(n, e, extra)| match extra {
        Some(x) => format!("{n} {e} {x}"),
        None => format!("{n} {e}"),
    })
}

#[derive(Debug, Clone)]
enum Mutation {
    Insert(Index, String),
    Delete(Index),
    Duplicate(Index),
    FlipByte(Index, Index, u8),
    CarriageReturn(Index),
    Whitespace(Index, String),
    UnknownHeader(Index, String),
    ErrnoSection(Vec<String>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<Index>(), line()).prop_map(|(i, l)| Mutation::Insert(i, l)),
        any::<Index>().prop_map(Mutation::Delete),
        any::<Index>().prop_map(Mutation::Duplicate),
        (any::<Index>(), any::<Index>(), 1u8..=255)
            .prop_map(|(i, j, m)| Mutation::FlipByte(i, j, m)),
        any::<Index>().prop_map(Mutation::CarriageReturn),
        (any::<Index>(), "[ \t]{1,3}").prop_map(|(i, w)| Mutation::Whitespace(i, w)),
        (any::<Index>(), "[A-Z:_]{1,12}").prop_map(|(i, h)| Mutation::UnknownHeader(i, h)),
        vec(errno_entry(), 0..5).prop_map(Mutation::ErrnoSection),
    ]
}

/// Applies mutations to a file's lines (as bytes, so flips can break UTF-8).
fn mutate(text: &str, mutations: &[Mutation]) -> Vec<u8> {
    let mut lines: Vec<Vec<u8>> = text.split('\n').map(|l| l.as_bytes().to_vec()).collect();
    for m in mutations {
        let n = lines.len();
        match m {
            Mutation::Insert(i, l) => lines.insert(i.index(n + 1), l.clone().into_bytes()),
            Mutation::Delete(i) if n > 0 => drop(lines.remove(i.index(n))),
            Mutation::Duplicate(i) if n > 0 => {
                let at = i.index(n);
                lines.insert(at, lines[at].clone());
            }
            Mutation::FlipByte(i, j, mask) if n > 0 => {
                let l = &mut lines[i.index(n)];
                if !l.is_empty() {
                    let at = j.index(l.len());
                    l[at] ^= mask;
                }
            }
            Mutation::CarriageReturn(i) if n > 0 => lines[i.index(n)].push(b'\r'),
            Mutation::Whitespace(i, w) if n > 0 => {
                let l = &mut lines[i.index(n)];
                l.splice(0..0, w.bytes());
                l.extend(w.bytes());
            }
            Mutation::UnknownHeader(i, h) => {
                let at = i.index(n + 1);
                lines.splice(at..at, [Vec::new(), h.clone().into_bytes(), b"x".to_vec()]);
            }
            Mutation::ErrnoSection(entries) => {
                lines.push(Vec::new());
                lines.push(b"ERRNO".to_vec());
                lines.extend(entries.iter().map(|e| e.clone().into_bytes()));
            }
            _ => {}
        }
    }
    lines.join(&b'\n')
}

/// Noise the grammar tolerates: CRLF line ends, surrounding blanks, comment lines.
fn with_tolerated_noise(text: &str, crlf: bool, pad: &str, comments: bool) -> String {
    let lines: Vec<String> = text
        .split('\n')
        .map(|l| match l {
            "" => String::new(),
            l if comments => format!("# a comment\n{pad}{l}{pad}"),
            l => format!("{pad}{l}{pad}"),
        })
        .collect();
    lines.join(if crlf { "\r\n" } else { "\n" })
}

// ---------------------------------------------------------------- Tracefiles

proptest! {
    #![proptest_config(scaled_config(1))]

    #[test]
    fn tracefile_arbitrary_bytes(bytes in vec(any::<u8>(), 0..2048)) {
        let _ = parse_bytes(&bytes, path());
    }

    #[test]
    fn tracefile_arbitrary_lines(lines in vec(line(), 0..40)) {
        let _ = parse_str(&lines.join("\n"), path());
    }

    #[test]
    fn tracefile_round_trips(t in tracefile(), crlf in any::<bool>(), pad in "[ \t]{0,2}",
                             comments in any::<bool>()) {
        let rendered = t.render();
        let parsed = parse_str(&rendered, path());
        prop_assert!(parsed.is_ok(), "{rendered}\n{parsed:?}");
        prop_assert_eq!(parsed.ok(), Some(t.clone()));
        let noisy = with_tolerated_noise(&rendered, crlf, &pad, comments);
        prop_assert_eq!(parse_str(&noisy, path()).ok(), Some(t));
    }

    #[test]
    fn tracefile_mutations(t in tracefile(),
                           mutations in vec(mutation(), 1..8)) {
        let bytes = mutate(&t.render(), &mutations);
        if let Ok(parsed) = parse_bytes(&bytes, path()) {
            // Whatever is accepted renders to a file that reads back the same.
            prop_assert_eq!(parse_str(&parsed.render(), path()).ok(), Some(parsed));
        }
    }
}

// ---------------------------------------------------------------- errno probe output

fn probe_line() -> impl Strategy<Value = String> {
    let kind = select(vec!["refused", "killed", "done", "unsupported", "x", ""]);
    let abi = select(vec!["x86_64", "i386", "x32", "amd64", "arm", ""]);
    let number = prop_oneof![0u32..600, Just(PROBED_NUMBERS), 1u32..=4096, any::<u32>(),]
        .prop_map(|n| n.to_string());
    let arg = prop_oneof![number, "-?[0-9]{1,22}", "[ -~]{0,5}"];
    (kind, abi, vec(arg, 0..4)).prop_map(|(k, a, args)| format!("{k} {a} {}", args.join(" ")))
}

/// A complete, valid probe output and the findings it must parse into.
fn probe_output() -> impl Strategy<Value = (String, Refusals)> {
    let per_abi = prop_oneof![
        1 => Just(None),
        4 => btree_map(0u32..PROBED_NUMBERS, prop_oneof![1u32..=4095, Just(0)], 0..30)
            .prop_map(Some),
    ];
    vec(per_abi, PROBED_ABIS.len()).prop_map(|abis| {
        let mut out = String::new();
        let mut expected = Refusals::default();
        for (abi, numbers) in PROBED_ABIS.into_iter().zip(abis) {
            let Some(numbers) = numbers else {
                out.push_str(&format!("killed {abi}\n"));
                expected.killed.insert(abi);
                continue;
            };
            // Errno 0 stands for a call the filter killed.
            for (nr, errno) in numbers {
                if errno == 0 {
                    out.push_str(&format!("killed {abi} {nr}\n"));
                    expected.killed_calls.entry(abi).or_default().insert(nr);
                } else {
                    out.push_str(&format!("refused {abi} {nr} {errno}\n"));
                    expected.errnos.entry(abi).or_default().insert(nr, errno);
                }
            }
            out.push_str(&format!("done {abi} {PROBED_NUMBERS}\n"));
        }
        (out, expected)
    })
}

proptest! {
    #![proptest_config(scaled_config(1))]

    #[test]
    fn probe_arbitrary(text in any::<String>()) {
        let _ = Refusals::parse(&text);
    }

    #[test]
    fn probe_lines(lines in vec(probe_line(), 0..12)) {
        if let Ok(r) = Refusals::parse(&lines.join("\n")) {
            for by_nr in r.errnos.values() {
                for (nr, errno) in by_nr {
                    prop_assert!(*nr < PROBED_NUMBERS && (1..=4095).contains(errno));
                }
            }
        }
    }

    #[test]
    fn probe_valid_output((text, expected) in probe_output(),
                          mutations in vec(mutation(), 0..3)) {
        prop_assert_eq!(Refusals::parse(&text).ok(), Some(expected));
        let mutated = String::from_utf8_lossy(&mutate(&text, &mutations)).into_owned();
        let _ = Refusals::parse(&mutated);
    }
}
