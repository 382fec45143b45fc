//! Docker side: which containers exist, which carry the label, and where their cgroups are.

pub mod cgroup;
pub mod watcher;

use std::collections::HashMap;

use crate::tracefile::label::LABEL;

/// The label value, if this set of labels asks for tracing.
pub fn tracefile_label(labels: &HashMap<String, String>) -> Option<&str> {
    labels.get(LABEL).map(String::as_str)
}
