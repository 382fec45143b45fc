use std::env;
use std::path::PathBuf;

use libbpf_cargo::SkeletonBuilder;

const BPF_SRC: &str = "bpf/ctrace.bpf.c";

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
}
