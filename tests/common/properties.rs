//! Property-test settings shared by the proptest files: case counts and the CI seed.

use proptest::test_runner::{Config as ProptestConfig, RngSeed};

/// `factor` times the case count, for properties that cost microseconds a case.
pub fn scaled_config(factor: u32) -> ProptestConfig {
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
