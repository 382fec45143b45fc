//! Harness for the integration tests. The root ones need root and a real dockerd: in CI (`CI`
//! set) a missing environment fails the test; elsewhere the test prints that it skipped.
//!
//! Each file holds one part; everything is re-exported here, so `use common::...` names it.
#![allow(dead_code, unused_imports)]
pub mod asm;
pub mod cli;
pub mod containerd;
pub mod containers;
pub mod daemon;
pub mod dockerd;
pub mod enforce;
pub mod env;
pub mod fixtures;
pub mod images;
pub mod podman;
pub mod probe;
pub mod programs;
pub mod properties;
pub mod tracefiles;

pub use asm::{assemble, build_i386_image};
pub use cli::{
    code, ctrace, ctrace_env, ctrace_in, ctrace_ok, files_in, path, stderr, stdout, write,
};
pub use containerd::{containerd_namespace, Namespace, CONTAINERD_SOCKET};
pub use containers::{run_at, run_container, run_detached, run_named, GatedContainer};
pub use daemon::Daemon;
pub use dockerd::OwnDockerd;
pub use env::{chromium, docker, docker_ok, missing, root_env, Env};
pub use images::{import_image, import_image_into, IMAGE};
pub use podman::{podman_service, OwnPodman};
pub use probe::{block_on, measure};
pub use tracefiles::{has_call, section, set, unique};
