//! The daemon's reader thread: owns the kernel programs, reads their events (through
//! `kernel::events::EventReader`, as `requirements` does) and forwards them to the writer;
//! it also applies the control requests that change kernel state.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;

use crate::kernel::event::{Event, NewCgroup, PhaseChange};
use crate::kernel::events::EventReader;
use crate::kernel::{CapSource, CgroupHandle, Kernel, KernelConfig, KernelError, SyscallLinks};
use crate::pipeline::{ControlReceiver, ToReader, ToWriter};

mod counters;

use counters::{Occupancy, Reported, CLAIM_FAILURES, DECODE_ERRORS};

const POLL_TIMEOUT: Duration = Duration::from_millis(50);
const MISS_REPORT_EVERY: Duration = Duration::from_secs(5);

/// What the kernel side chose, reported once loading succeeded.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub cap_source: CapSource,
    pub cgroup_storage: bool,
    pub task_cache: bool,
    pub slots: Option<(u32, u32)>,
}

pub struct ReaderConfig {
    pub kernel: KernelConfig,
    /// Where the cgroup2 hierarchy is mounted (paths in events are relative to it).
    pub cgroup_root: PathBuf,
    /// Keep the syscall program attached even with nothing tracked (`--runc`): a new
    /// container's runtime set-up is then seen from its first call.
    pub always_attached: bool,
}

pub fn spawn(
    config: ReaderConfig,
    to_writer: Sender<ToWriter>,
    control: ControlReceiver,
    new_cgroups: tokio::sync::mpsc::UnboundedSender<NewCgroup>,
) -> Result<(JoinHandle<()>, Loaded), KernelError> {
    let (ready_tx, ready_rx) = crossbeam_channel::bounded(1);
    let handle = std::thread::Builder::new()
        .name("ctrace-reader".into())
        .spawn(move || {
            let kernel = match Kernel::load(config.kernel) {
                Ok(k) => k,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            let loaded = Loaded {
                cap_source: kernel.cap_source(),
                cgroup_storage: kernel.uses_cgroup_storage(),
                task_cache: kernel.uses_task_cache(),
                slots: kernel.slots_capacity(),
            };
            let mut reader = Reader {
                kernel: &kernel,
                cgroup_root: config.cgroup_root,
                always_attached: config.always_attached,
                debug: config.kernel.debug,
                labelled_containers: 0,
                engine_events_late: false,
                tracked: HashMap::new(),
                syscall_link: None,
                to_writer,
                new_cgroups,
            };
            if let Err(e) = reader.sync_attachment() {
                let _ = ready_tx.send(Err(e));
                return;
            }
            let _ = ready_tx.send(Ok(loaded));
            reader.run(&control);
        })
        .map_err(|e| KernelError::Load(libbpf_rs::Error::from(e)))?;
    match ready_rx.recv() {
        Ok(Ok(loaded)) => Ok((handle, loaded)),
        Ok(Err(e)) => {
            let _ = handle.join();
            Err(e)
        }
        Err(_) => {
            let _ = handle.join();
            Err(KernelError::Load(libbpf_rs::Error::from(
                std::io::Error::other("the reader thread ended while loading"),
            )))
        }
    }
}

struct Reader<'k> {
    kernel: &'k Kernel,
    cgroup_root: PathBuf,
    always_attached: bool,
    debug: bool,
    /// Labelled containers Docker has (see ToReader::LabelledContainers).
    labelled_containers: usize,
    /// The engine's events come after its containers start (podman): attached throughout.
    engine_events_late: bool,
    tracked: HashMap<u64, CgroupHandle>,
    syscall_link: Option<SyscallLinks>,
    to_writer: Sender<ToWriter>,
    new_cgroups: tokio::sync::mpsc::UnboundedSender<NewCgroup>,
}

impl Reader<'_> {
    fn run(&mut self, control: &ControlReceiver) {
        let fresh: Rc<RefCell<Vec<NewCgroup>>> = Rc::default();
        let to_writer = self.to_writer.clone();
        let fresh_in_cb = Rc::clone(&fresh);
        let debug = self.debug;
        let events = EventReader::new(self.kernel, move |event| {
            match event {
                // Blocks when the writer lags: back-pressure, never a drop.
                Event::Sighting(s) => {
                    if to_writer.send(ToWriter::Sighting(s)).is_err() {
                        return ControlFlow::Break(());
                    }
                }
                Event::NewCgroup(c) => {
                    fresh_in_cb.borrow_mut().push(c.clone());
                    if to_writer.send(ToWriter::NewCgroup(c)).is_err() {
                        return ControlFlow::Break(());
                    }
                }
                Event::Phase(change) => log_phase(debug, &change),
            }
            ControlFlow::Continue(())
        });
        let mut events = match events {
            Ok(r) => r,
            Err(e) => {
                tracing::error!("{e}");
                return;
            }
        };
        let mut reported = Reported::default();
        let mut occupancy = Occupancy::default();
        occupancy.report(self, false);
        let mut last_report = Instant::now();
        loop {
            if let Err(e) = events.wait(Some(control.wake_fd()), POLL_TIMEOUT) {
                tracing::error!("polling the ring buffer: {e}");
                break;
            }
            if let Err(e) = events.consume() {
                tracing::error!("{e}");
                break;
            }
            for cgroup in fresh.borrow_mut().drain(..) {
                self.adopt_new(cgroup);
            }
            let mut stop = false;
            control.acknowledge();
            let requests: Vec<ToReader> = control.rx.try_iter().collect();
            if requests
                .iter()
                .any(|r| matches!(r, ToReader::Stopped { .. }))
            {
                // A stopped container's last sightings go to the writer before its stop.
                if let Err(e) = events.consume() {
                    tracing::error!("{e}");
                    break;
                }
            }
            for request in requests {
                stop |= self.apply(request);
            }
            if stop {
                // Drain what the kernel already submitted before ending.
                let _ = events.consume();
                for cgroup in fresh.borrow_mut().drain(..) {
                    let _ = self.new_cgroups.send(cgroup);
                }
                break;
            }
            if last_report.elapsed() >= MISS_REPORT_EVERY {
                last_report = Instant::now();
                reported.check(self.kernel, &mut events, &self.to_writer);
                occupancy.report(self, false);
            }
        }
        occupancy.report(self, true);
        events.report_decode_errors();
        let _ = self.to_writer.send(ToWriter::KernelCounter {
            key: DECODE_ERRORS,
            value: events.decode_errors(),
        });
        let _ = self
            .to_writer
            .send(ToWriter::RingbufMisses(self.kernel.ringbuf_misses()));
        let _ = self.to_writer.send(ToWriter::KernelCounter {
            key: CLAIM_FAILURES,
            value: self.kernel.claim_failures(),
        });
    }

    /// The kernel tracks a new container cgroup since its creation; hold its handle,
    /// make sure syscalls are observed, and ask the watcher who it is.
    fn adopt_new(&mut self, cgroup: NewCgroup) {
        let path = join_relative(&self.cgroup_root, &cgroup.path);
        match CgroupHandle::open(path) {
            Ok(handle) => {
                self.tracked.insert(cgroup.cgroup_id, handle);
            }
            Err(e) if self.kernel.uses_cgroup_storage() => {
                // Gone already (a container that lived microseconds); its state went with it.
                tracing::info!("cgroup {} ({}): {e}", cgroup.cgroup_id, cgroup.path);
            }
            Err(_) => {}
        }
        self.log_attach_error();
        let _ = self.new_cgroups.send(cgroup);
    }

    fn log_attach_error(&mut self) {
        if let Err(e) = self.sync_attachment() {
            tracing::error!("{e}");
        }
    }

    fn sync_attachment(&mut self) -> Result<(), KernelError> {
        let want = self.always_attached
            || self.engine_events_late
            || self.labelled_containers > 0
            || !self.tracked.is_empty();
        if want && self.syscall_link.is_none() {
            self.syscall_link = Some(self.kernel.attach_syscalls()?);
        } else if !want {
            self.syscall_link = None;
        }
        Ok(())
    }

    /// Returns true on shutdown.
    fn apply(&mut self, request: ToReader) -> bool {
        match request {
            ToReader::Track { cgroup_id, path } => match CgroupHandle::open(path.clone()) {
                Ok(handle) => {
                    if let Err(e) = self.kernel.track(&handle) {
                        tracing::error!(
                            "container {} ({}) is not traced: {e}",
                            container_of(&path),
                            path.display()
                        );
                    }
                    self.tracked.insert(cgroup_id, handle);
                    self.log_attach_error();
                }
                Err(e) => tracing::error!("cgroup {cgroup_id} ({}): {e}", path.display()),
            },
            ToReader::Stopped { cgroup_id, at_ms } => {
                let _ = self.to_writer.send(ToWriter::Stopped { cgroup_id, at_ms });
                self.untrack(cgroup_id);
            }
            ToReader::Untrack { cgroup_id } => self.untrack(cgroup_id),
            ToReader::LabelledContainers(count) => {
                self.labelled_containers = count;
                self.log_attach_error();
            }
            ToReader::EngineEventsLate(late) => {
                self.engine_events_late = late;
                self.log_attach_error();
            }
            ToReader::NewEpoch => self.kernel.start_epoch(),
            ToReader::Forget { cgroup_id } => self.kernel.forget(cgroup_id),
            ToReader::ExpectCgroup { path, expected } => {
                if !self.kernel.expect_cgroup(&path, expected) {
                    tracing::warn!(
                        "cgroup {path} cannot be announced to the kernel (too long, or the \
                         map is full): its container is traced from its task"
                    );
                }
            }
            ToReader::Applied(done) => {
                let _ = done.send(());
            }
            ToReader::Shutdown => return true,
        }
        false
    }

    fn untrack(&mut self, cgroup_id: u64) {
        let handle = self.tracked.remove(&cgroup_id);
        self.kernel.untrack(cgroup_id, handle.as_ref());
        self.log_attach_error();
    }
}

/// The short id of the container a cgroup directory belongs to (any runtime's layout,
/// `runtimes::cgroup_path`), or its leaf as it is.
fn container_of(path: &Path) -> String {
    match crate::runtimes::cgroup_path::parse(&path.to_string_lossy()) {
        Some(c) => c.short_id().to_string(),
        None => path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned(),
    }
}

/// Phase events explain a recording: every one with --debug (which sets the log level).
fn log_phase(debug: bool, change: &PhaseChange) {
    if debug {
        tracing::debug!("phase: {change}");
    }
}

fn join_relative(root: &Path, relative: &str) -> PathBuf {
    root.join(relative.trim_start_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_container_is_named_by_its_cgroup_directory() {
        let id = "2a09f2e45c80".to_string() + &"0".repeat(52);
        let cgroupfs = PathBuf::from("/sys/fs/cgroup/unified/docker").join(&id);
        let systemd =
            PathBuf::from("/sys/fs/cgroup/system.slice").join(format!("docker-{id}.scope"));
        assert_eq!(container_of(&cgroupfs), "2a09f2e45c80");
        assert_eq!(container_of(&systemd), "2a09f2e45c80");
        let podman =
            PathBuf::from("/sys/fs/cgroup/unified/libpod_parent").join(format!("libpod-{id}"));
        assert_eq!(container_of(&podman), "2a09f2e45c80");
        assert_eq!(container_of(Path::new("/sys/fs/cgroup/other")), "other");
    }
}
