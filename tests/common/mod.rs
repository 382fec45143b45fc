//! Harness for the tests that need root and a real dockerd. In CI (`CI` set) a missing
//! environment fails the test; elsewhere the test prints that it skipped.
#![allow(dead_code)]
pub mod programs;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, Once};
use std::time::{Duration, Instant};

pub const IMAGE: &str = "ctrace-test/busybox";

/// One daemon at a time: every daemon sees every labelled container.
static SERIAL: Mutex<()> = Mutex::new(());

pub struct Env {
    _serial: MutexGuard<'static, ()>,
}

pub fn missing<T>(what: &str) -> Option<T> {
    if std::env::var_os("CI").is_some() {
        panic!("CI requires {what}; run the README's test command (it installs and starts what is needed)");
    }
    eprintln!("SKIPPED (not in CI): needs {what}");
    None
}

/// Debian's `chromium` (headless screenshots), or `None` (a printed skip) outside CI.
pub fn chromium() -> Option<PathBuf> {
    let found = Command::new("chromium")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        Some(PathBuf::from("chromium"))
    } else {
        missing("chromium (apt-get install chromium)")
    }
}

/// Root, dockerd and the test image, or `None` (a printed skip) outside CI.
pub fn root_env() -> Option<Env> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return missing("root");
    }
    if !docker(&["info", "--format", "{{.ServerVersion}}"])
        .status
        .success()
    {
        return missing("a running dockerd");
    }
    let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    ensure_image();
    Some(Env { _serial: serial })
}

pub fn docker(args: &[&str]) -> std::process::Output {
    Command::new("docker")
        .args(args)
        .output()
        .expect("running the docker client")
}

fn ensure_image() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let busybox = Path::new("/bin/busybox");
        assert!(
            busybox.exists(),
            "/bin/busybox missing: apt-get install busybox-static"
        );
        import_image(IMAGE, &[(busybox, "bin/busybox")]);
    });
}

/// Makes an image from files (host path, path in image) plus busybox applet links.
pub fn import_image(tag: &str, files: &[(&Path, &str)]) {
    import_image_into(None, tag, files);
}

/// As `import_image`, into the dockerd at `host` (a `docker --host` value) if given.
pub fn import_image_into(host: Option<&str>, tag: &str, files: &[(&Path, &str)]) {
    let root = tempfile::tempdir().expect("tempdir");
    for (src, dst) in files {
        let target = root.path().join(dst);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(src, &target).unwrap();
    }
    std::fs::create_dir_all(root.path().join("bin")).unwrap();
    for applet in [
        "sh", "mkdir", "chown", "chroot", "echo", "cat", "sleep", "true", "ls", "touch",
    ] {
        let link = root.path().join("bin").join(applet);
        if !link.exists() {
            std::os::unix::fs::symlink("busybox", link).unwrap();
        }
    }
    for dir in ["tmp", "proc", "sys", "dev", "etc"] {
        std::fs::create_dir_all(root.path().join(dir)).unwrap();
    }
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "tar -C {} -c . | docker {} import - {tag}",
            root.path().display(),
            host.map(|h| format!("--host {h}")).unwrap_or_default()
        ))
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "docker import of {tag} failed");
}

/// A `ctrace trace` daemon with its own store and data directory.
pub struct Daemon {
    pub child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub stderr_log: PathBuf,
}

impl Daemon {
    pub fn start(extra: &[&str]) -> Daemon {
        Daemon::start_with(extra, &[])
    }

    /// As `start`, with environment variables for the daemon (DOCKER_HOST, ...).
    pub fn start_with(extra: &[&str], env: &[(&str, &str)]) -> Daemon {
        Daemon::start_in(tempfile::tempdir().expect("tempdir"), extra, env)
    }

    /// As `start_with`, with its store and data directory in `dir` (which it keeps).
    pub fn start_in(dir: tempfile::TempDir, extra: &[&str], env: &[(&str, &str)]) -> Daemon {
        let stderr_log = dir.path().join("stderr.log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_ctrace"))
            .arg("trace")
            .arg("--db")
            .arg(dir.path().join("ctrace.db"))
            .arg("--data")
            .arg(dir.path().join("data"))
            .args(extra)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr_log).unwrap())
            .spawn()
            .expect("starting ctrace trace");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                eprintln!("[ctrace] {line}");
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.contains("waiting for Docker events") => break,
                Ok(_) => {}
                Err(_) => {
                    let _ = child.kill();
                    let log = std::fs::read_to_string(&stderr_log).unwrap_or_default();
                    panic!("ctrace trace did not start within 30 s:\n{log}");
                }
            }
        }
        Daemon {
            child: Some(child),
            dir,
            stderr_log,
        }
    }

    pub fn db(&self) -> PathBuf {
        self.dir.path().join("ctrace.db")
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_log).unwrap_or_default()
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).unwrap_or(0)
    }

    /// Sends a signal to the daemon (only ever the process this harness started).
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on the PID of our own child.
        unsafe { libc::kill(self.pid(), sig) };
    }

    /// SIGTERM, then waits; returns the exit status.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        self.signal(libc::SIGTERM);
        self.child.take().unwrap().wait().unwrap()
    }

    pub fn kill9(&mut self) {
        self.signal(libc::SIGKILL);
        let _ = self.child.take().unwrap().wait();
    }

    /// Waits until the Tracefile exists and `done` accepts it; returns its text.
    pub fn wait_tracefile(&self, name: &str, done: impl Fn(&str) -> bool) -> String {
        let path = self.data().join(name);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            if !text.is_empty() && done(&text) {
                return text;
            }
            if Instant::now() > deadline {
                panic!(
                    "Tracefile {} not as expected within 10 s; it holds:\n{text}\nctrace stderr:\n{}",
                    path.display(),
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// As `wait_tracefile`, then until the Tracefile has not changed for a second: one
    /// container's sightings can reach it in more than one write.
    pub fn wait_tracefile_settled(&self, name: &str, done: impl Fn(&str) -> bool) -> String {
        self.wait_tracefiles_settled(&[name.to_string()], done)
            .remove(0)
    }

    /// `wait_tracefile_settled` for several Tracefiles, settling them together.
    pub fn wait_tracefiles_settled(
        &self,
        names: &[String],
        done: impl Fn(&str) -> bool,
    ) -> Vec<String> {
        let mut texts: Vec<String> = names
            .iter()
            .map(|name| self.wait_tracefile(name, &done))
            .collect();
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut since = Instant::now();
        while since.elapsed() < Duration::from_secs(1) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
            for (name, text) in names.iter().zip(texts.iter_mut()) {
                let now = std::fs::read_to_string(self.data().join(name)).unwrap_or_default();
                if now != *text {
                    *text = now;
                    since = Instant::now();
                }
            }
        }
        texts
    }

    pub fn query(&self, sql: &str) -> Vec<Vec<String>> {
        let out = Command::new(env!("CARGO_BIN_EXE_ctrace"))
            .args(["sql", "--db"])
            .arg(self.db())
            .arg(sql)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ctrace sql failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .skip(1)
            .map(|l| l.split('\t').map(str::to_string).collect())
            .collect()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: kill(2) on the PID of our own child.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let _ = child.wait();
        }
    }
}

/// A detached labelled container that waits at a gate (the file /tmp/go) before running
/// `script`; removed when dropped, even when the test fails.
pub struct GatedContainer {
    pub id: String,
}

impl GatedContainer {
    pub fn start(label: &str, script: &str) -> GatedContainer {
        let gated = format!("while [ ! -e /tmp/go ]; do sleep 0.1; done; {script}");
        GatedContainer {
            id: run_detached(label, &["sh", "-c", &gated]),
        }
    }

    /// Lets the script run and waits for the container to exit.
    pub fn open_and_wait(&self) {
        assert!(docker(&["exec", &self.id, "touch", "/tmp/go"])
            .status
            .success());
        let _ = docker(&["wait", &self.id]);
    }
}

impl Drop for GatedContainer {
    fn drop(&mut self) {
        let _ = docker(&["rm", "-f", &self.id]);
    }
}

/// `docker run -d --network none` of the test image with a Tracefile label; returns the id.
pub fn run_detached(label: &str, cmd: &[&str]) -> String {
    let label = format!("ctrace.tracefile={label}");
    let mut args = vec!["run", "-d", "--network", "none", "--label", &label, IMAGE];
    args.extend(cmd);
    docker_ok(&args).trim().to_string()
}

/// `docker run --rm --network none` with a label; returns stdout, panics on failure.
pub fn run_container(label: Option<&str>, image: &str, cmd: &[&str]) -> String {
    run_named(None, label, image, cmd)
}

pub fn run_named(name: Option<&str>, label: Option<&str>, image: &str, cmd: &[&str]) -> String {
    run_at(None, name, label, image, cmd)
}

/// As `run_named`, on the dockerd at `host` (a `docker --host` value) if given.
pub fn run_at(
    host: Option<&str>,
    name: Option<&str>,
    label: Option<&str>,
    image: &str,
    cmd: &[&str],
) -> String {
    let mut args = vec![];
    if let Some(host) = host {
        args.extend(["--host", host]);
    }
    args.extend(["run", "--rm", "--network", "none"]);
    if let Some(name) = name {
        args.extend(["--name", name]);
    }
    let l;
    if let Some(label) = label {
        l = format!("ctrace.tracefile={label}");
        args.extend(["--label", &l]);
    }
    args.push(image);
    args.extend(cmd);
    docker_ok(&args)
}

/// `docker ARGS`; returns stdout, panics on failure.
fn docker_ok(args: &[&str]) -> String {
    let out = docker(args);
    assert!(
        out.status.success(),
        "docker {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The lines of one Tracefile section.
pub fn section(tracefile: &str, header: &str) -> Vec<String> {
    let mut lines = tracefile.lines();
    let mut out = Vec::new();
    if lines.by_ref().any(|l| l == header) {
        out.extend(lines.take_while(|l| !l.is_empty()).map(str::to_string));
    }
    out
}

pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// A static i386 program: mkdir("/i386dir"), write(1, "ok\n"), exit(0), via int 0x80.
const I386_ASM: &str = r#"
    .globl _start
    .text
_start:
    movl $39, %eax
    movl $dir, %ebx
    movl $0755, %ecx
    int $0x80
    movl $4, %eax
    movl $1, %ebx
    movl $msg, %ecx
    movl $3, %edx
    int $0x80
    movl $1, %eax
    xorl %ebx, %ebx
    int $0x80
    .data
dir: .asciz "/i386dir"
msg: .ascii "ok\n"
"#;

/// A static x86_64 program that makes the native calls with i386's numbers of /prog32's calls
/// (getpid 39, stat 4, write 1), then execs /prog32: in one task, the same numbers in two ABIs.
const NATIVE_THEN_I386_ASM: &str = r#"
    .globl _start
    .text
_start:
    movl $39, %eax
    syscall
    movl $4, %eax
    xorl %edi, %edi
    syscall
    movl $1, %eax
    movl $1, %edi
    leaq path(%rip), %rsi
    xorl %edx, %edx
    syscall
    movl $59, %eax
    leaq path(%rip), %rdi
    leaq argv(%rip), %rsi
    xorl %edx, %edx
    syscall
    movl $60, %eax
    movl $1, %edi
    syscall
    .data
path: .asciz "/prog32"
argv: .quad path, 0
"#;

/// Assembles and links `asm` into `dir/name` with binutils (`as`, `ld`, their extra flags).
pub fn assemble(
    dir: &Path,
    name: &str,
    asm: &str,
    as_flags: &[&str],
    ld_flags: &[&str],
) -> PathBuf {
    let (src, obj, bin) = (
        dir.join(format!("{name}.s")),
        dir.join(format!("{name}.o")),
        dir.join(name),
    );
    std::fs::write(&src, asm).unwrap();
    let ok = Command::new("as")
        .args(as_flags)
        .arg("-o")
        .arg(&obj)
        .arg(&src)
        .status()
        .unwrap()
        .success()
        && Command::new("ld")
            .args(ld_flags)
            .arg("-o")
            .arg(&bin)
            .arg(&obj)
            .status()
            .unwrap()
            .success();
    assert!(ok, "assembling {name} failed (needs binutils)");
    bin
}

pub fn build_i386_image(tag: &str) {
    let dir = tempfile::tempdir().unwrap();
    let bin = assemble(
        dir.path(),
        "prog32",
        I386_ASM,
        &["--32"],
        &["-m", "elf_i386"],
    );
    let native = assemble(
        dir.path(),
        "native-then-i386",
        NATIVE_THEN_I386_ASM,
        &[],
        &[],
    );
    import_image(
        tag,
        &[
            (Path::new("/bin/busybox"), "bin/busybox"),
            (&bin, "prog32"),
            (&native, "native-then-i386"),
        ],
    );
}
