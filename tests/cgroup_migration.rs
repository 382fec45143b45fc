//! Tasks that enter a traced container's cgroup after it started: `docker exec`, and a
//! running process moved in by a write to cgroup.procs. The syscall program finds a task's
//! container through a per-CPU cache keyed by the task's pt_regs (bpf/task_cache.h); a move
//! changes a running task's cgroup under a valid entry, and its very next call must count.
//! Root and a real dockerd; in CI a missing environment fails.

mod common;

use std::io::{Read, Seek, SeekFrom, Write};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::{docker, root_env, section, unique, Daemon};

/// x86_64, no libc: maps the file named by argv[1], marks byte 0 = 1 (ready), calls getppid
/// in a loop until byte 0 = 2 (so its CPU's cache entry stays its own, filled in the host's
/// cgroup), then calls getpriority (nothing else in these containers does) and exits.
const SPINNER_ASM: &str = r#"
    .globl _start
    .text
_start:
    mov 16(%rsp), %rdi
    mov $2, %eax
    mov $2, %esi
    xor %edx, %edx
    syscall
    mov %rax, %r8
    xor %edi, %edi
    mov $4096, %esi
    mov $3, %edx
    mov $1, %r10d
    xor %r9d, %r9d
    mov $9, %eax
    syscall
    mov %rax, %rbx
    movb $1, (%rbx)
1:  mov $110, %eax
    syscall
    cmpb $2, (%rbx)
    jne 1b
    mov $140, %eax
    xor %edi, %edi
    xor %esi, %esi
    syscall
    mov $60, %eax
    xor %edi, %edi
    syscall
"#;

/// A labelled container that sleeps; removed when dropped, even when the test fails.
struct Sleeper(String);

impl Sleeper {
    fn start(label: &str) -> Sleeper {
        Sleeper(common::run_detached(label, &["sleep", "60"]))
    }

    /// The container's cgroup directory on the unified hierarchy.
    fn cgroup(&self) -> std::path::PathBuf {
        let pid =
            String::from_utf8_lossy(&docker(&["inspect", "-f", "{{.State.Pid}}", &self.0]).stdout)
                .trim()
                .parse::<u32>()
                .unwrap();
        let rel = ctrace::docker::cgroup::cgroup_of_pid(pid).unwrap();
        ctrace::docker::cgroup::cgroup2_mount()
            .unwrap()
            .join(rel.trim_start_matches('/'))
    }
}

/// A daemon, and a labelled sleeper it traces already.
fn traced_sleeper(prefix: &str) -> (Daemon, String, Sleeper) {
    let daemon = Daemon::start(&[]);
    let name = unique(prefix);
    let sleeper = Sleeper::start(&name);
    daemon.wait_tracefile(&name, |t| t.contains("SYSCALLS"));
    (daemon, name, sleeper)
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = docker(&["rm", "-f", &self.0]);
    }
}

/// Ends the spinner by its PID if the test fails before it exits.
struct Spinner(Child);

impl Drop for Spinner {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn flag(file: &mut std::fs::File) -> u8 {
    let mut byte = [0u8];
    file.seek(SeekFrom::Start(0)).unwrap();
    file.read_exact(&mut byte).unwrap();
    byte[0]
}

fn pin_this_thread_to(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is valid; CPU_SET writes inside it; sched_setaffinity reads
    // it for the calling thread (pid 0).
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_running_task_moved_into_a_traced_container_counts_from_its_first_call() {
    let Some(_env) = root_env() else { return };
    let (daemon, name, sleeper) = traced_sleeper("moved");

    let work = tempfile::tempdir().unwrap();
    let spinner = common::assemble(work.path(), "spin", SPINNER_ASM, &[], &[]);
    let flag_path = work.path().join("flag");
    let mut file = std::fs::File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&flag_path)
        .unwrap();
    file.write_all(&[0u8; 4096]).unwrap();
    // Each on its own CPU (given two): the spinner keeps running while this thread moves it.
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    pin_this_thread_to(0);
    let spinner_cpu = if cpus > 1 { "1" } else { "0" };
    let mut spin = Spinner(
        Command::new("taskset")
            .args(["-c", spinner_cpu])
            .arg(&spinner)
            .arg(&flag_path)
            .spawn()
            .unwrap(),
    );
    wait_for("the spinner", || flag(&mut file) == 1);

    // Moved while it runs: nothing else needs to happen on its CPU before its next call.
    std::fs::write(
        sleeper.cgroup().join("cgroup.procs"),
        spin.0.id().to_string(),
    )
    .unwrap();
    file.seek(SeekFrom::Start(0)).unwrap();
    file.write_all(&[2]).unwrap();
    let status = spin.0.wait().unwrap();
    assert!(status.success(), "spinner: {status}");

    daemon.wait_tracefile(&name, |t| {
        section(t, "SYSCALLS").iter().any(|l| l == "getpriority")
    });
}

#[test]
fn docker_exec_into_a_traced_container_is_recorded() {
    let Some(_env) = root_env() else { return };
    let (daemon, name, sleeper) = traced_sleeper("exec");
    let out = docker(&["exec", &sleeper.0, "busybox", "sync"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    daemon.wait_tracefile(&name, |t| {
        section(t, "SYSCALLS").iter().any(|l| l == "sync")
    });
}
