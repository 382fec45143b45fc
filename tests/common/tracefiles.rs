//! Reading Tracefiles, and unique labels to name them by.

use std::collections::BTreeSet;

/// The lines of one Tracefile section.
pub fn section(tracefile: &str, header: &str) -> Vec<String> {
    let mut lines = tracefile.lines();
    let mut out = Vec::new();
    if lines.by_ref().any(|l| l == header) {
        out.extend(lines.take_while(|l| !l.is_empty()).map(str::to_string));
    }
    out
}

/// A line of the Tracefile is `name` (a call or capability, in any section).
pub fn has_call(tracefile: &str, name: &str) -> bool {
    tracefile.lines().any(|l| l == name)
}

pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// Lines (a section's, say) as a set.
pub fn set(lines: Vec<String>) -> BTreeSet<String> {
    lines.into_iter().collect()
}
