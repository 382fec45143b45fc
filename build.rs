use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

use libbpf_cargo::SkeletonBuilder;

#[path = "build/header_consts.rs"]
mod header_consts;

const BPF_SRC: &str = "bpf/ctrace.bpf.c";
/// The errno probe (src/refusals): a static program embedded in ctrace, run in a container.
const ERRNO_PROBE_SRC: &str = "src/refusals/errno_probe.c";
/// The runtime baseline's workload (src/requirements.rs): exit(0), nothing else.
const NOOP_SRC: &str = "src/requirements/noop.S";

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"));
    SkeletonBuilder::new()
        .source(BPF_SRC)
        // Atomic fetch-and-or with a result needs BPF ISA v3 (kernel 5.12+).
        .clang_args(["-I", "bpf", "-mcpu=v3", "-Wall"])
        .build_and_generate(out.join("ctrace.skel.rs"))
        .expect("building the BPF skeleton (needs clang; see README)");
    // Benchmark-only programs (benches/syscall_overhead.rs): the floor and the original design.
    for (src, skel) in [
        ("benches/bpf/floor.bpf.c", "bench_floor.skel.rs"),
        ("benches/bpf/original.bpf.c", "bench_original.skel.rs"),
    ] {
        SkeletonBuilder::new()
            .source(src)
            .clang_args(["-I", "bpf", "-mcpu=v3", "-Wall"])
            .build_and_generate(out.join(skel))
            .expect("building a benchmark BPF skeleton");
        println!("cargo:rerun-if-changed={src}");
    }
    // The whole directory: every header the programs include (a new one too).
    println!("cargo:rerun-if-changed=bpf");
    // Migrations are embedded with include_str!; rebuild when one is added or changed.
    println!("cargo:rerun-if-changed=migrations");
    build_errno_probe(&out);
    build_noop(&out);
    // Codes and sizes shared with the programs, as Rust constants (src/kernel/codes.rs).
    header_consts::generate(&["bpf/event.h", "bpf/task_cache.h"], &out);
}

/// `$CC -nostdlib -static -s` (no libc, one section, no page padding) → `$OUT_DIR/noop`.
fn build_noop(out: &Path) {
    println!("cargo:rerun-if-changed={NOOP_SRC}");
    let cc = env::var_os("CC").unwrap_or_else(|| "cc".into());
    let output = Command::new(&cc)
        .args([
            "-nostdlib",
            "-static",
            "-s",
            "-Wl,--build-id=none",
            "-Wl,-n",
            "-o",
        ])
        .arg(out.join("noop"))
        .arg(NOOP_SRC)
        .output();
    let cc = cc.to_string_lossy();
    match output {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!(
            "building {NOOP_SRC} with `{cc}` failed ({}):\n{}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => panic!("building {NOOP_SRC}: cannot run the C compiler `{cc}` ({e}); set CC"),
    }
}

/// `$CC -static -O2 -pthread` (CC defaults to `cc`) → `$OUT_DIR/errno_probe`.
fn build_errno_probe(out: &Path) {
    println!("cargo:rerun-if-changed={ERRNO_PROBE_SRC}");
    println!("cargo:rerun-if-env-changed=CC");
    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    if arch != "x86_64" {
        panic!("the errno probe ({ERRNO_PROBE_SRC}) is x86_64 code; target arch is `{arch}`");
    }
    let cc = env::var_os("CC").unwrap_or_else(|| "cc".into());
    let binary = out.join("errno_probe");
    let run = Command::new(&cc)
        .args(["-static", "-O2", "-pthread", "-Wall", "-Wextra", "-s", "-o"])
        .arg(&binary)
        .arg(ERRNO_PROBE_SRC)
        .output();
    let cc = cc.to_string_lossy();
    let output = match run {
        Ok(output) => output,
        Err(e) => panic!(
            "building the errno probe: cannot run the C compiler `{cc}` ({e}); \
             install gcc and libc6-dev (scripts/setup-host.sh) or set CC"
        ),
    };
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        let hint = if stderr.contains("cannot find -lc") || stderr.contains("-lpthread") {
            "static glibc is missing: install libc6-dev (scripts/setup-host.sh)"
        } else if stderr.contains("No such file") && stderr.contains(".h") {
            "C headers are missing: install libc6-dev and linux-libc-dev (scripts/setup-host.sh)"
        } else {
            "see the compiler's message above"
        };
        panic!(
            "building the errno probe with `{cc} -static -O2 -pthread {ERRNO_PROBE_SRC}` \
             failed ({}): {hint}\n{stderr}",
            output.status
        );
    }
    for line in stderr.lines() {
        println!("cargo:warning=errno_probe.c: {line}");
    }
}
