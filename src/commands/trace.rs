//! `ctrace trace`: the daemon. Wires the flow: kernel → reader → channel → writer → store and
//! Tracefiles, with the Docker watcher (or, with `--containerd`, the containerd watcher)
//! resolving cgroups to containers.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, oneshot, watch};

use crate::cli::TraceArgs;
use crate::containerd;
use crate::docker::{cgroup, watcher};
use crate::kernel::{probe, KernelConfig};
use crate::pipeline::{self, reader, writer, ReaderControl, ToReader, ToWriter, CHANNEL_CAPACITY};
use crate::store::{self, lock, status};

/// Where bollard's local connection looks: a `unix://` DOCKER_HOST, else Docker's default.
fn docker_address() -> String {
    std::env::var("DOCKER_HOST")
        .ok()
        .filter(|h| h.starts_with("unix://"))
        .unwrap_or_else(|| "unix:///var/run/docker.sock".to_string())
}

pub fn run(args: TraceArgs) -> anyhow::Result<ExitCode> {
    probe::check_prerequisites()?;
    // A file-size limit must fail a write (EFBIG: the store's writer keeps its batch and
    // retries), not kill the daemon.
    // SAFETY: installs SIG_IGN for one signal before any other thread exists.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    if args.epoch.is_zero() {
        anyhow::bail!("--epoch must be longer than zero");
    }
    let cgroup_root = cgroup::cgroup2_mount()?;
    // One daemon per store and per data directory (two stores may share one), locked before
    // anything is opened for writing; the locks live until this function returns.
    if let Some(dir) = args.db.parent().filter(|d| !d.as_os_str().is_empty()) {
        create_dir(dir)
            .with_context(|| format!("creating the directory of store `{}`", args.db.display()))?;
    }
    let _store_lock = lock::lock_store(&args.db)?;
    create_dir(&args.data)
        .with_context(|| format!("creating data directory `{}`", args.data.display()))?;
    let _data_lock = lock::lock_data_dir(&args.data)?;
    let conn = store::open_rw(&args.db)?;
    let started_ms = store::now_ms();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(trace(args, conn, cgroup_root, started_ms))
}

/// Creates `dir` and its missing parents (the default `/var/lib/ctrace` on a fresh host)
/// owned by the daemon's user (root) with mode 0755 whatever the umask: readable by the
/// users who run `options` and `sql`, writable by the daemon alone. An existing directory
/// is left as it is.
fn create_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if dir.is_dir() {
        return Ok(());
    }
    let mut missing = vec![];
    let mut at = Some(dir);
    while let Some(d) = at.filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
        missing.push(d);
        at = d.parent();
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)?;
    // The umask may have taken bits away from the directories made here.
    for d in missing {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(())
}

async fn trace(
    args: TraceArgs,
    conn: rusqlite::Connection,
    cgroup_root: std::path::PathBuf,
    started_ms: i64,
) -> anyhow::Result<ExitCode> {
    let measured = store::refusals::measured(&conn)
        .with_context(|| format!("reading store `{}`", args.db.display()))?;
    let containerd = args.containerd.clone().map(containerd::address);
    // Without dockerd the daemon waits for it (the watcher keeps connecting) rather than fail.
    let docker = match containerd {
        Some(_) => Ok(None),
        None => watcher::connect().await.map(Some),
    };
    let docker = match docker {
        Ok(docker) => docker,
        Err(e) => {
            tracing::info!(
                "waiting for Docker at {} (retrying every {:?}, backing off to every \
                 {:?}): {e}",
                docker_address(),
                crate::runtimes::backoff::BACKOFF_MIN,
                crate::runtimes::backoff::BACKOFF_MAX
            );
            None
        }
    };
    let (to_writer, from_reader) = crossbeam_channel::bounded::<ToWriter>(CHANNEL_CAPACITY);
    let (to_reader, control) =
        pipeline::control_channel().context("making the reader's control channel")?;
    let (new_tx, new_rx) = mpsc::unbounded_channel();

    let writer = writer::spawn(
        conn,
        writer::WriterConfig {
            data_dir: args.data.clone(),
            runc: args.runc,
            epoch: args.epoch,
            announce: true,
            store: Some(args.db.clone()),
        },
        from_reader,
        to_reader.clone(),
    )
    .context("starting the writer thread")?;
    let (reader, loaded) = reader::spawn(
        reader::ReaderConfig {
            kernel: KernelConfig {
                debug: args.debug,
                state: args.cgroup_state,
                slots: args.cgroup_slots,
                task_cache: !args.no_task_cache,
                ringbuf_size: args.ringbuf_size,
            },
            cgroup_root: cgroup_root.clone(),
            always_attached: args.runc,
        },
        to_writer.clone(),
        control,
        new_tx,
    )?;
    tracing::info!(
        "capability checks via {}; per-cgroup state in {}",
        loaded.cap_source.describe(),
        if loaded.cgroup_storage {
            "cgroup local storage"
        } else {
            "slots (an array by cgroup id)"
        }
    );
    if loaded.task_cache {
        tracing::info!("syscalls find their container through the per-CPU placement cache");
    }
    if args.debug {
        tracing::info!("kernel events go to {}", trace_pipe().display());
    }
    let _ = to_writer.send(ToWriter::Meta(daemon_facts(&args, &loaded, started_ms)));

    let (stop_tx, stop_rx) = watch::channel(false);
    let (ready_tx, ready_rx) = oneshot::channel();
    let (watching, engine) = match containerd {
        Some(address) => {
            let engine = format!("containerd events at {}", address.display());
            let watcher = containerd::watcher::Watcher::new(
                address,
                to_writer.clone(),
                to_reader.clone(),
                cgroup_root,
            );
            let run = watcher.run(ready_tx, new_rx, stop_rx.clone());
            (tokio::spawn(run), engine)
        }
        None => {
            let watcher = watcher::Watcher::new(to_writer.clone(), to_reader.clone(), cgroup_root)
                .with_measured(measured);
            let run = watcher.run(docker, ready_tx, new_rx, stop_rx.clone());
            (tokio::spawn(run), "Docker events".to_string())
        }
    };
    let epochs = tokio::spawn(epoch_timer(args.epoch, to_reader.clone(), stop_rx));
    // "Ready to trace": printed once the watcher is connected and has its inventory.
    let ready_line = format!(
        "ctrace: waiting for {engine} (store {}, Tracefiles in {})",
        args.db.display(),
        args.data.display()
    );
    tokio::spawn(async move {
        if ready_rx.await.is_ok() {
            println!("{ready_line}");
        }
    });

    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tracing::info!("stopping: draining the ring buffer and committing");
    let _ = stop_tx.send(true);
    let _ = watching.await;
    let _ = epochs.await;
    let _ = to_reader.send(ToReader::Shutdown);
    let reader_done = tokio::task::spawn_blocking(move || reader.join());
    if reader_done.await.map(|r| r.is_err()).unwrap_or(true) {
        tracing::error!("the reader thread panicked");
    }
    // The reader is done: everything it sent is ahead of this in the channel.
    let stopped = Some(store::now_ms().to_string());
    let _ = to_writer.send(ToWriter::Meta(vec![(status::DAEMON_STOPPED_AT, stopped)]));
    let _ = to_writer.send(ToWriter::Shutdown);
    drop(to_writer);
    let writer_done = tokio::task::spawn_blocking(move || writer.join()).await;
    if writer_done.map(|r| r.is_err()).unwrap_or(true) {
        anyhow::bail!("the writer thread panicked; the last batch may not be committed");
    }
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// What `ctrace status` tells about this daemon, for the store's `meta` table: written once
/// loading succeeded, in the writer's next transaction. A fact that does not apply (slots with
/// cgroup local storage) is removed, so none is left from an earlier daemon.
fn daemon_facts(
    args: &TraceArgs,
    loaded: &reader::Loaded,
    started_ms: i64,
) -> Vec<(&'static str, Option<String>)> {
    let text = |s: &str| Some(s.to_string());
    let (slots, hash) = loaded.slots.unzip();
    let state = if loaded.cgroup_storage {
        "storage"
    } else {
        "slots"
    };
    let on_off = |on: bool| text(if on { "on" } else { "off" });
    vec![
        (status::DAEMON_PID, Some(std::process::id().to_string())),
        (status::DAEMON_VERSION, text(env!("CARGO_PKG_VERSION"))),
        (status::DAEMON_STARTED_AT, Some(started_ms.to_string())),
        (status::DAEMON_STOPPED_AT, None),
        (
            status::DAEMON_CAPABILITY_HOOK,
            text(loaded.cap_source.describe()),
        ),
        (status::DAEMON_CGROUP_STATE, text(state)),
        (status::DAEMON_CGROUP_SLOTS, slots.map(|n| n.to_string())),
        (status::DAEMON_COLLISION_HASH, hash.map(|n| n.to_string())),
        (status::DAEMON_TASK_CACHE, on_off(loaded.task_cache)),
        (
            status::DAEMON_RINGBUF_SIZE,
            Some(args.ringbuf_size.to_string()),
        ),
        (
            status::DAEMON_EPOCH_MS,
            Some(args.epoch.as_millis().to_string()),
        ),
        (status::DAEMON_RUNC, text(if args.runc { "1" } else { "0" })),
        (
            status::DAEMON_DATA_DIR,
            Some(args.data.display().to_string()),
        ),
        // This daemon's kernel counts from zero; the reader stores each change.
        ("ringbuf_misses", text("0")),
        ("claim_failures", text("0")),
    ]
}

async fn epoch_timer(
    epoch: std::time::Duration,
    to_reader: ReaderControl,
    mut stop: watch::Receiver<bool>,
) {
    // Epochs are slots of Unix time (the store counts them the same way): reset at each
    // boundary, not `epoch` after start-up.
    let epoch_ms = epoch.as_millis().max(1);
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    let to_boundary = std::time::Duration::from_millis((epoch_ms - now_ms % epoch_ms) as u64);
    let mut every = tokio::time::interval_at(tokio::time::Instant::now() + to_boundary, epoch);
    loop {
        tokio::select! {
            _ = every.tick() => { let _ = to_reader.send(ToReader::NewEpoch); }
            _ = stop.changed() => return,
        }
    }
}

fn trace_pipe() -> &'static Path {
    let tracing = Path::new("/sys/kernel/tracing/trace_pipe");
    if tracing.exists() {
        tracing
    } else {
        Path::new("/sys/kernel/debug/tracing/trace_pipe (mount tracefs: mount -t tracefs tracefs /sys/kernel/tracing)")
    }
}
