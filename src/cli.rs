//! The command line, compatible with the original tool's (`trace`, `options`, `diff`,
//! `requirements`, `capability`, `syscall`), plus store selections and `sql`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::abi::Abi;

#[derive(Debug, Parser)]
#[command(
    name = "ctrace",
    version,
    about = "Record the system calls and capabilities Docker containers use; turn them into seccomp profiles and capability options",
    long_about = "ctrace traces Docker containers labelled `ctrace.tracefile=NAME` with eBPF, keeps \
                  what they use in SQLite, writes Tracefiles, and generates the tightest \
                  `--cap-drop/--cap-add` options and seccomp profile that still let them run."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Least severe log lines shown on stderr: error, warn, info, debug, trace, or `tracing`
    /// directives (`ctrace=debug`). Default: $RUST_LOG, else info.
    #[arg(long, global = true, value_name = "LEVEL")]
    pub log_level: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start tracing labelled containers (root): record into the store, write Tracefiles.
    Trace(TraceArgs),
    /// Generate run options and a seccomp profile from Tracefiles or the store.
    Options(OptionsArgs),
    /// Compare two Tracefiles or two store selections (exit 0 same, 1 different, 2 error).
    Diff(DiffArgs),
    /// Record the runtime's own needs (container start up to execve) as a Tracefile (root).
    Requirements(RequirementsArgs),
    /// Look up a capability by number or (partial) name; no query lists all.
    Capability(LookupArgs),
    /// Look up a system call by number or (partial) name; no query lists all.
    Syscall(SyscallLookupArgs),
    /// Write one self-contained HTML page about a store selection or Tracefiles: timeline of
    /// first sightings, syscalls by kind and ABI, capabilities, profile size, window changes.
    #[command(
        long_about = "Write one self-contained HTML page (inline CSS and SVG, no script, nothing \
                      fetched) about what the selected containers used.\n\n\
                      Per Tracefile of the selection (per container when selecting with --container \
                      or --name; per file for Tracefile inputs): a timeline of first sightings, the \
                      syscalls grouped by kind (file, network, process, memory, ...) and ABI, the \
                      capabilities granted and denied, and how many syscalls the profile `ctrace \
                      options` would make allows. Per label with strftime windows (app-%Y%m%d), \
                      what changed between its newest two windows. Sizes are compared with \
                      Docker's default profile as the errno probe measured it on this engine \
                      (`ctrace requirements`, or the daemon tracing a container with default \
                      settings), naming recorded calls the default would have refused.",
        after_help = "Examples:\n  ctrace report --output report.html\n  \
                      ctrace report --since 7d --label web --output web.html\n  \
                      ctrace report --output files.html data/web data/db"
    )]
    Report(ReportArgs),
    /// Per syscall and capability of a selection over one or more stores: on how many nodes,
    /// containers and runs it was seen, thinnest first (what rests on a single run).
    Coverage(CoverageArgs),
    /// Run read-only SQL on the store and print the rows: tab-separated (tabs, line breaks
    /// and backslashes escaped as \t, \n, \r, \\), or --csv, or --json.
    Sql(SqlArgs),
    /// Show whether a daemon is tracing into a store (pid, uptime, kernel programs and
    /// fallbacks in use), its counters, and the containers traced most recently. Works
    /// without a daemon too (from the store); never disturbs one.
    Status(StatusArgs),
    /// Print a shell completion script (bash: `ctrace completions bash >
    /// /etc/bash_completion.d/ctrace`).
    Completions(CompletionsArgs),
    /// Print the manual page (roff: `ctrace man | man -l -`).
    Man,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// The store when neither `--db` nor `CTRACE_DB` names one: an absolute path, so a daemon
/// started from any working directory (a service manager, `sudo` elsewhere) finds the same
/// history.
pub const DEFAULT_DB: &str = "/var/lib/ctrace/ctrace.db";
/// The Tracefile directory when neither `--data` nor `CTRACE_DATA` names one.
pub const DEFAULT_DATA: &str = "/var/lib/ctrace";
/// Environment variables that replace the defaults (a command-line option wins over them).
pub const ENV_DB: &str = "CTRACE_DB";
pub const ENV_DATA: &str = "CTRACE_DATA";

/// The default store: `$CTRACE_DB` if set and not empty, else [`DEFAULT_DB`]. For the
/// commands whose `--db` chooses a mode (`options`, `diff`) and so cannot read the
/// environment through clap.
pub fn default_db() -> PathBuf {
    std::env::var_os(ENV_DB)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DB))
}

#[derive(Debug, Args)]
pub struct TraceArgs {
    /// SQLite store of everything recorded (its directory is created if missing).
    #[arg(long, env = ENV_DB, default_value = DEFAULT_DB)]
    pub db: PathBuf,
    /// Directory Tracefiles are written under (label values are relative to it); created
    /// (0755) if missing.
    #[arg(long, env = ENV_DATA, default_value = DEFAULT_DATA)]
    pub data: PathBuf,
    /// Include the runtime's container set-up (runc init, before the entrypoint's execve) in
    /// Tracefiles. It is always recorded in the store, flagged.
    #[arg(long)]
    pub runc: bool,
    /// Write kernel events to the trace pipe (/sys/kernel/tracing/trace_pipe).
    #[arg(long)]
    pub debug: bool,
    /// How often per-container sightings are reset, so continued use is recorded again and
    /// `--since` stays true (humantime: 30m, 1h, 1d).
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    pub epoch: Duration,
    /// Where the kernel keeps per-container state: `slots` (an array indexed by cgroup id,
    /// no helper call per syscall; the default) or `storage` (cgroup local storage, 6.2+).
    #[arg(long, value_enum, default_value = "auto")]
    pub cgroup_state: crate::kernel::StateMap,
    /// Slots in the array (a power of two up to 4096); fewer only to test collisions.
    #[arg(long, default_value_t = crate::kernel::MAX_SLOTS, hide = true)]
    pub cgroup_slots: u32,
    /// Find each task's state with a helper call on every syscall instead of the per-CPU
    /// placement cache; only to compare the two.
    #[arg(long, hide = true)]
    pub no_task_cache: bool,
    /// Size in bytes of the kernel's ring buffer of first sightings (4 MiB by default): a
    /// power of two, a multiple of the page size, 4096 or more. When it is full a sighting is
    /// not lost for good: the miss is counted (a warning, `ringbuf_misses` in the store's
    /// `meta`) and the item is sent again on its next use.
    #[arg(long, value_name = "BYTES", default_value_t = crate::kernel::DEFAULT_RINGBUF_SIZE,
          value_parser = crate::kernel::parse_ringbuf_size)]
    pub ringbuf_size: u32,
    /// Watch containerd's own API instead of Docker's: containers started with `ctr run`,
    /// nerdctl or containerd's CRI plugin, in every containerd namespace but Docker's
    /// (`moby`: Docker's containers are traced by the default, Docker-watching daemon; one
    /// daemon watches one engine). SOCKET: $CONTAINERD_ADDRESS, else
    /// /run/containerd/containerd.sock (Docker's private containerd listens at
    /// /var/run/docker/containerd/containerd.sock). A container whose cgroup is not named
    /// like a 64-hex-digit id is traced from its task's creation, not its first call.
    #[arg(long, value_name = "SOCKET")]
    pub containerd: Option<Option<PathBuf>>,
}

/// Which recorded containers to use, and when.
#[derive(Debug, Args, Clone, Default)]
pub struct Selection {
    /// Only what was used since this long ago (humantime: 7d, 12h) or since an RFC 3339 time.
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// Only what was used before this long ago (humantime) or an RFC 3339 time.
    #[arg(long, value_name = "WHEN")]
    pub until: Option<String>,
    /// Containers whose ctrace.tracefile label is this value (repeatable).
    #[arg(long = "label", value_name = "VALUE")]
    pub labels: Vec<String>,
    /// Containers with this name (repeatable).
    #[arg(long = "name", value_name = "NAME")]
    pub names: Vec<String>,
    /// Containers of this image (repeatable).
    #[arg(long = "image", value_name = "IMAGE")]
    pub images: Vec<String>,
    /// Containers with this id or id prefix (repeatable).
    #[arg(long = "container", value_name = "ID")]
    pub containers: Vec<String>,
    /// Include the runtime-init phase (runc) in the selection.
    #[arg(long)]
    pub runc: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// `docker run` options.
    Docker,
    /// A docker-compose service snippet.
    Compose,
    /// A Kubernetes securityContext and a security-profiles-operator SeccompProfile.
    K8s,
    /// A machine-readable summary.
    Json,
}

#[derive(Debug, Args)]
pub struct OptionsArgs {
    /// Path of the resulting seccomp profile.
    #[arg(long, short)]
    pub output: PathBuf,
    /// Tracefiles, or directories searched recursively for them.
    #[arg(value_name = "TRACEFILE")]
    pub tracefiles: Vec<PathBuf>,
    /// Read from the store instead of (or besides) Tracefiles. Repeatable, or a directory
    /// (every `*.db` under it, one store per node): the selection applies to each, the union
    /// is taken. Without it, the runtime baseline still comes from the default store:
    /// $CTRACE_DB, else /var/lib/ctrace/ctrace.db.
    #[arg(long, value_name = "PATH")]
    pub db: Vec<PathBuf>,
    #[command(flatten)]
    pub selection: Selection,
    /// What to print.
    #[arg(long, value_enum, default_value = "docker")]
    pub format: OutputFormat,
    /// Do not add the runtime baseline (`ctrace requirements`).
    #[arg(long)]
    pub no_requirements: bool,
    /// Use this requirements Tracefile as the runtime baseline instead of the cached one.
    #[arg(long, value_name = "TRACEFILE")]
    pub requirements: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Path of the HTML file (written whole, atomically).
    #[arg(long, short)]
    pub output: PathBuf,
    /// Tracefiles, or directories searched recursively for them (one part per file).
    #[arg(value_name = "TRACEFILE")]
    pub tracefiles: Vec<PathBuf>,
    /// The store (repeatable, or a directory of node stores, merged); when no Tracefiles
    /// are given, $CTRACE_DB, else /var/lib/ctrace/ctrace.db.
    #[arg(long, value_name = "PATH")]
    pub db: Vec<PathBuf>,
    #[command(flatten)]
    pub selection: Selection,
}

#[derive(Debug, Args)]
pub struct CoverageArgs {
    /// The store (repeatable, or a directory of node stores, merged).
    #[arg(long, value_name = "PATH", required = true)]
    pub db: Vec<PathBuf>,
    #[command(flatten)]
    pub selection: Selection,
    /// Print JSON (`coverage` and `coverage_totals`, as `options --format json`).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// Two Tracefiles; with --db, omit them and give --a-*/--b-* selections.
    #[arg(value_name = "TRACEFILE", num_args = 0..=2)]
    pub tracefiles: Vec<PathBuf>,
    /// Compare two selections of the store (repeatable, or a directory of node stores:
    /// each side is the union over all of them).
    #[arg(long, value_name = "PATH")]
    pub db: Vec<PathBuf>,
    /// Selection A (left, `-`): `--a-since 14d --a-until 7d --a-name web`.
    #[command(flatten)]
    pub a: SideA,
    /// Selection B (right, `+`).
    #[command(flatten)]
    pub b: SideB,
    /// Colour: auto (terminal), always, never.
    #[arg(long, default_value = "auto", value_parser = ["auto", "always", "never"])]
    pub color: String,
}

macro_rules! side {
    ($name:ident, $p:literal) => {
        #[derive(Debug, Args, Clone, Default)]
        pub struct $name {
            #[arg(id = concat!($p, "-since"), long = concat!($p, "-since"), value_name = "WHEN")]
            pub since: Option<String>,
            #[arg(id = concat!($p, "-until"), long = concat!($p, "-until"), value_name = "WHEN")]
            pub until: Option<String>,
            #[arg(id = concat!($p, "-label"), long = concat!($p, "-label"), value_name = "VALUE")]
            pub labels: Vec<String>,
            #[arg(id = concat!($p, "-name"), long = concat!($p, "-name"), value_name = "NAME")]
            pub names: Vec<String>,
            #[arg(id = concat!($p, "-image"), long = concat!($p, "-image"), value_name = "IMAGE")]
            pub images: Vec<String>,
            #[arg(id = concat!($p, "-container"), long = concat!($p, "-container"), value_name = "ID")]
            pub containers: Vec<String>,
        }

        impl From<$name> for Selection {
            fn from(s: $name) -> Selection {
                Selection {
                    since: s.since,
                    until: s.until,
                    labels: s.labels,
                    names: s.names,
                    images: s.images,
                    containers: s.containers,
                    runc: false,
                }
            }
        }
    };
}
side!(SideA, "a");
side!(SideB, "b");

#[derive(Debug, Args)]
pub struct RequirementsArgs {
    /// Also write the requirements Tracefile here (else it is printed on stdout). Either way
    /// it is cached in the store, where `options` finds it.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Store that caches the baseline per Docker engine version.
    #[arg(long, env = ENV_DB, default_value = DEFAULT_DB)]
    pub db: PathBuf,
    /// Record again even if the store has the baseline for this engine version (the new
    /// recording is added to the earlier ones: each is a sample of the runtime's calls).
    #[arg(long)]
    pub refresh: bool,
    /// The OCI runtime to record, as the engine names it (`docker run --runtime`: runc,
    /// crun, ...). Default: the engine's default runtime. Each runtime's baseline is kept
    /// apart in the store (`VERSION/RUNTIME`); `options` reads the default runtime's, so
    /// pass this one with `options --requirements FILE` for containers of that runtime.
    #[arg(long, value_name = "NAME")]
    pub runtime: Option<String>,
}

#[derive(Debug, Args)]
pub struct LookupArgs {
    /// Number or name (partial names list every match).
    pub query: Option<String>,
}

#[derive(Debug, Args)]
pub struct SyscallLookupArgs {
    /// Number or name (partial names list every match).
    pub query: Option<String>,
    /// ABI whose table to use.
    #[arg(long, default_value = "x86_64")]
    pub abi: Abi,
}

#[derive(Debug, Args)]
pub struct SqlArgs {
    /// The store.
    #[arg(long, env = ENV_DB, default_value = DEFAULT_DB)]
    pub db: PathBuf,
    /// Print a JSON array of objects, one per row (column → value), instead of TSV.
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// Print CSV (RFC 4180: a header record, CRLF line ends, fields with commas, quotes or
    /// line breaks quoted) instead of TSV.
    #[arg(long)]
    pub csv: bool,
    /// One statement that only reads, e.g. "SELECT * FROM container_summary". Anything that
    /// would write (INSERT, CREATE, ATTACH, VACUUM, setting a PRAGMA, load_extension(), ...)
    /// is refused.
    pub query: String,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The store (read only; a running daemon is found through its lock file, `<db>.lock`).
    #[arg(long, env = ENV_DB, default_value = DEFAULT_DB)]
    pub db: PathBuf,
    /// Print one JSON document with the same facts instead of text.
    #[arg(long)]
    pub json: bool,
    /// List every traced container, not only the most recently started ones.
    #[arg(long, conflicts_with = "limit")]
    pub all: bool,
    /// How many of the most recently started containers to list.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub limit: u64,
    /// Exit 1 unless a daemon is tracing into this store and has written its facts (kernel
    /// programs loaded): a readiness probe (deploy/kubernetes/daemonset.yaml).
    #[arg(long)]
    pub check: bool,
}
