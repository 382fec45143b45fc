//! Restrictions generated from a Tracefile: a Docker seccomp profile and capability options.
//!
//! - [`seccomp`]: the profile (deny with EPERM, allow what was recorded) and its atomic write;
//! - [`formats`]: `docker run` options, compose and Kubernetes snippets, a JSON summary.

pub mod formats;
pub mod seccomp;

pub use seccomp::{write_profile, ProfileError, SeccompProfile};
