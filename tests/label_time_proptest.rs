//! Property tests of the parsers of label patterns (and their expansion: always a safe
//! relative path) and of store time selections: no panic on any input, and what they accept
//! is what they promise. 8 times the base case count (512, or `PROPTEST_CASES=N`) per
//! property, as these are cheap; failures are not persisted (see tests/parsers_proptest.rs).

mod common;

use std::path::{Component, Path};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, FixedOffset, Utc};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;

use common::properties::scaled_config;
use ctrace::store::select::parse_when;
use ctrace::tracefile::label::TracefilePattern;

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
