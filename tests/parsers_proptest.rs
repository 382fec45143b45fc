//! Property tests: the parsers of untrusted text never panic, and what they accept is what
//! they promise. Tracefiles (arbitrary bytes, and valid files mutated line by line), label
//! patterns and their expansion, store time selections, and the errno probe's output.
//!
//! 512 cases per property by default (8 times that for labels and times, which are cheap);
//! `PROPTEST_CASES=N` sets another base count. Failures are not persisted to files: a failing
//! case found here becomes a unit test next to its parser.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, FixedOffset, Utc};
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::sample::{select, subsequence, Index};
use proptest::test_runner::RngSeed;

use ctrace::abi::Abi;
use ctrace::names;
use ctrace::refusals::{Refusals, PROBED_ABIS, PROBED_NUMBERS};
use ctrace::store::select::parse_when;
use ctrace::tracefile::label::TracefilePattern;
use ctrace::tracefile::parse::{parse_bytes, parse_str};
use ctrace::tracefile::Tracefile;

/// `factor` times the case count, for properties that cost microseconds a case.
fn scaled_config(factor: u32) -> ProptestConfig {
    let cases: u32 = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(512);
    // CI runs one fixed sequence of cases (a run that passed passes again); elsewhere each run
    // explores new ones, unless PROPTEST_RNG_SEED fixes them.
    let seed = std::env::var("PROPTEST_RNG_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .or_else(|| std::env::var_os("CI").map(|_| 0x0c7a_ce5e));
    ProptestConfig {
        cases: cases.saturating_mul(factor),
        failure_persistence: None,
        rng_seed: seed.map_or(RngSeed::Random, RngSeed::Fixed),
        ..ProptestConfig::default()
    }
}

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

// ---------------------------------------------------------------- labels

#[rustfmt::skip]
const MODIFIERS: &[&str] = &["", "-", "_", "0", "#", "^", ":", "::", ":::", ".", "3", ".6"];
const SPEC_LETTERS: &str = "aAbBcCdDeFfgGhHIjklmMnpPqrRsStTuUvVwWxXyYzZ+%.:";

/// Patterns of strftime items, most with one item between literals (a single unknown item
/// makes the whole pattern invalid, and hides the others).
fn strftime_like() -> impl Strategy<Value = String> {
    let modifier = select(MODIFIERS);
    let letters: Vec<char> = SPEC_LETTERS.chars().collect();
    let spec = (modifier, select(letters)).prop_map(|(m, l)| format!("%{m}{l}"));
    let piece = prop_oneof![
        4 => spec.clone(),
        2 => "[a-z0-9_-]{1,4}",
        1 => select(vec!["/", "..", ".", "\0", " "]).prop_map(String::from),
    ];
    let one = ("[a-z]{1,3}", spec.clone(), "[a-z-]{0,3}").prop_map(|(a, s, b)| a + &s + &b);
    prop_oneof![2 => one, 1 => vec(piece, 1..5).prop_map(|v| v.concat())]
}

fn assert_safe_relative(expanded: &str) -> Result<(), TestCaseError> {
    let p = Path::new(expanded);
    let safe = !expanded.contains('\0')
        && p.is_relative()
        && p.components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
        && p.components().any(|c| matches!(c, Component::Normal(_)));
    prop_assert!(safe, "unsafe expansion {expanded:?}");
    Ok(())
}

fn check_label(value: &str, secs: i64, offset: i32) -> Result<(), TestCaseError> {
    let Ok(pattern) = TracefilePattern::parse(value) else {
        return Ok(());
    };
    let utc = DateTime::<Utc>::from_timestamp(secs, 0).unwrap_or_default();
    let local = utc.with_timezone(&FixedOffset::east_opt(offset).unwrap());
    for expanded in [pattern.expand(&utc), pattern.expand(&local)]
        .into_iter()
        .flatten()
    {
        assert_safe_relative(&expanded)?;
    }
    Ok(())
}

// ---------------------------------------------------------------- store times

fn when() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[0-9]{1,25} ?(ns|us|ms|s|sec|m|min|h|d|w|M|y|years)( [0-9]{1,5}[a-z]{1,2})?",
        "[0-9]{1,6}-[0-9]{1,3}-[0-9]{1,3}[T ][0-9]{1,3}:[0-9]{1,3}(:[0-9]{1,3})?(\\.[0-9]{0,12})?(Z|[+-][0-9]{2}:?[0-9]{2})?",
        "[0-9 .:TZ+-]{0,30}",
    ]
}

proptest! {
    #![proptest_config(scaled_config(8))]

    #[test]
    fn label_arbitrary(value in any::<String>(), secs in -100_000_000_000i64..100_000_000_000,
                       offset in -86_399i32..86_400) {
        check_label(&value, secs, offset)?;
    }

    #[test]
    fn label_strftime(value in strftime_like(), secs in -100_000_000_000i64..100_000_000_000,
                      offset in -86_399i32..86_400) {
        check_label(&value, secs, offset)?;
    }

    #[test]
    fn store_time(value in when(), now_secs in 0u64..=(1u64 << 40)) {
        let now = UNIX_EPOCH + Duration::from_secs(now_secs);
        if let Ok(ms) = parse_when(&value, now) {
            prop_assert!(ms >= 0);
            if humantime::parse_duration(&value).is_ok() {
                prop_assert!(u128::try_from(ms).unwrap() <= (now_secs as u128) * 1000);
            }
        }
        let _ = parse_when(&value, SystemTime::now());
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
