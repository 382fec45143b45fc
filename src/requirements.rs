//! The runtime baseline: what the container runtime (runc init) calls under the container's
//! own seccomp filter before the entrypoint runs. Every profile must allow it, or no
//! container starts. Recorded by starting a container whose entrypoint does nothing.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::ops::ControlFlow;
use std::rc::Rc;
use std::time::Duration;

use anyhow::{bail, Context};
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptions, RemoveContainerOptions, RemoveImageOptions,
    WaitContainerOptions,
};
use bollard::Docker;
use futures_util::StreamExt;
use indicatif::ProgressBar;

use crate::abi::Abi;
use crate::kernel::codes::consts::PHASE_COUNT;
use crate::kernel::event::{Event, Item, Phase};
use crate::kernel::events::EventReader;
use crate::kernel::{Kernel, KernelConfig};
use crate::names;
use crate::tracefile::Tracefile;

const IMAGE_REPO: &str = "ctrace-requirements";
const IMAGE_TAG: &str = "noop";
/// Containers started at a time, round after round; the baseline is the union. The
/// runtime's Go scheduler does not call the same things every time, and more so when
/// several start at once (threads, preemption), as they do on a busy host.
const ROUNDS: &[usize] = &[1, 1, 1, 6, 6];

/// A static x86_64 program that only calls exit(0) (src/requirements/noop.S, assembled and
/// linked by build.rs; 400 bytes).
const NOOP_ELF: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/noop"));

fn image_tar() -> anyhow::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(NOOP_ELF.len() as u64);
    header.set_mode(0o755);
    header.set_cksum();
    builder.append_data(&mut header, "noop", NOOP_ELF)?;
    Ok(builder.into_inner()?)
}

/// One tag per process: concurrent recordings must not remove each other's image.
pub fn image() -> String {
    format!("{IMAGE_REPO}:{IMAGE_TAG}-{}", std::process::id())
}

pub async fn import_image(docker: &Docker) -> anyhow::Result<()> {
    let options = CreateImageOptions {
        from_src: Some("-".into()),
        // `name:tag` in `repo`: podman's compatible API ignores a separate tag on imports.
        repo: Some(image()),
        ..Default::default()
    };
    let body = bollard::body_full(bytes::Bytes::from(image_tar()?));
    let mut progress = docker.create_image(Some(options), Some(body), None);
    while let Some(step) = progress.next().await {
        step.context("importing the no-op image")?;
    }
    Ok(())
}

/// Starts one no-op container under the OCI runtime `oci` (the engine's default if None)
/// and returns its id once it has exited.
async fn run_once(docker: &Docker, oci: Option<&str>) -> anyhow::Result<String> {
    let body = ContainerCreateBody {
        image: Some(image()),
        cmd: Some(vec!["/noop".into()]),
        host_config: Some(HostConfig {
            network_mode: Some("none".into()),
            runtime: oci.map(str::to_string),
            ..Default::default()
        }),
        ..Default::default()
    };
    let created = docker
        .create_container(None::<CreateContainerOptions>, body)
        .await
        .context("creating the no-op container")?;
    let id = created.id;
    let started = docker.start_container(&id, None).await;
    if let Err(e) = started {
        let _ = remove(docker, &id).await;
        return Err(e).context("starting the no-op container");
    }
    let mut wait = docker.wait_container(&id, None::<WaitContainerOptions>);
    while let Some(r) = wait.next().await {
        if let Err(e) = r {
            let _ = remove(docker, &id).await;
            return Err(e).context("waiting for the no-op container");
        }
    }
    remove(docker, &id).await?;
    Ok(id)
}

async fn remove(docker: &Docker, id: &str) -> anyhow::Result<()> {
    docker
        .remove_container(
            id,
            Some(RemoveContainerOptions {
                force: true,
                ..Default::default()
            }),
        )
        .await
        .with_context(|| format!("removing container {id}"))
}

/// How many no-op containers a recording starts (more if some must be replaced).
pub fn containers() -> usize {
    ROUNDS.iter().sum()
}

/// Records the baseline with the kernel programs (root). The kernel state lives on this
/// thread; the Docker calls run on a current-thread runtime beside it. `progress` advances
/// by one per container recorded. `oci`: the OCI runtime the containers run under (runc,
/// crun, ...; the engine's default if None).
pub fn record(
    docker: &Docker,
    runtime: &tokio::runtime::Runtime,
    oci: Option<&str>,
    progress: &ProgressBar,
) -> anyhow::Result<Tracefile> {
    let kernel = Kernel::load(KernelConfig::default())?;
    let _syscalls = kernel.attach_syscalls()?;
    let seen: Rc<RefCell<Vec<Event>>> = Rc::default();
    let sink = Rc::clone(&seen);
    let events = RefCell::new(EventReader::new(&kernel, move |event| {
        sink.borrow_mut().push(event);
        ControlFlow::Continue(())
    })?);

    runtime.block_on(import_image(docker))?;
    let mut baseline = Tracefile::default();
    let take = || -> anyhow::Result<Vec<Event>> {
        // The ring buffer holds everything already; take it.
        let mut events = events.borrow_mut();
        events.wait(None, Duration::from_millis(100))?;
        events.consume()?;
        events.report_decode_errors();
        Ok(std::mem::take(&mut *seen.borrow_mut()))
    };
    for batch in ROUNDS {
        let started = futures_util::future::join_all((0..*batch).map(|_| run_once(docker, oci)));
        let ids = runtime
            .block_on(started)
            .into_iter()
            .collect::<anyhow::Result<Vec<_>>>()?;
        let mut events = take()?;
        for id in &ids {
            let calls = match filtered_calls(&events, id) {
                Ok(calls) => calls,
                Err(incomplete) => retry(
                    docker,
                    runtime,
                    oci,
                    &take,
                    &mut events,
                    incomplete,
                    progress,
                )?,
            };
            progress.inc(1);
            for (abi, name) in calls {
                baseline.add_syscall(abi, name);
            }
        }
    }
    let _ = runtime.block_on(docker.remove_image(
        &image(),
        Some(RemoveImageOptions {
            force: true,
            ..Default::default()
        }),
        None,
    ));
    Ok(baseline)
}

/// Containers started again for one whose recording was incomplete.
const RETRIES: usize = 3;

/// A container's recording was incomplete: start others, one at a time, until one is
/// complete. Fails with what every attempt saw.
fn retry(
    docker: &Docker,
    runtime: &tokio::runtime::Runtime,
    oci: Option<&str>,
    take: &dyn Fn() -> anyhow::Result<Vec<Event>>,
    events: &mut Vec<Event>,
    first: Incomplete,
    progress: &ProgressBar,
) -> anyhow::Result<BTreeSet<(Abi, &'static str)>> {
    let mut seen = vec![first];
    for _ in 0..RETRIES {
        progress.suspend(|| {
            tracing::warn!(
                "{}; starting another no-op container",
                seen.last().map(ToString::to_string).unwrap_or_default()
            )
        });
        progress.inc_length(1);
        let id = runtime.block_on(run_once(docker, oci))?;
        events.extend(take()?);
        match filtered_calls(events, &id) {
            Ok(calls) => return Ok(calls),
            Err(incomplete) => seen.push(incomplete),
        }
    }
    let attempts: Vec<String> = seen.iter().map(ToString::to_string).collect();
    bail!(
        "{} no-op containers in a row had incomplete recordings:\n  {}",
        attempts.len(),
        attempts.join("\n  ")
    )
}

/// A no-op container whose recording lacks the runtime's calls under the filter, and what
/// was seen of it.
#[derive(Debug)]
struct Incomplete {
    container: String,
    cgroup: Option<u64>,
    /// Sightings per phase, by the kernel's code: runtime, under the filter, application.
    sightings: [usize; PHASE_COUNT as usize],
    phases: Vec<String>,
}

impl std::fmt::Display for Incomplete {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let short = self.container.get(..12).unwrap_or(&self.container);
        let Some(cgroup) = self.cgroup else {
            return write!(
                f,
                "container {short}: its cgroup was not seen being created (cgroup v2 needed)"
            );
        };
        write!(
            f,
            "container {short} (cgroup {cgroup}): no execve of the runtime under the \
             container's seccomp filter; first sightings: {} runtime, {} under the filter, {} \
             application; phase events: {}",
            self.sightings[usize::from(Phase::Runtime.code())],
            self.sightings[usize::from(Phase::RuntimeFiltered.code())],
            self.sightings[usize::from(Phase::App.code())],
            if self.phases.is_empty() {
                "none".to_string()
            } else {
                self.phases.join("; ")
            }
        )
    }
}

/// What the runtime called under the container's filter in the container `id`.
fn filtered_calls(events: &[Event], id: &str) -> Result<BTreeSet<(Abi, &'static str)>, Incomplete> {
    let cgroup = events.iter().find_map(|e| match e {
        Event::NewCgroup(c) if c.container_id == id => Some(c.cgroup_id),
        _ => None,
    });
    let mut incomplete = Incomplete {
        container: id.to_string(),
        cgroup,
        sightings: [0; PHASE_COUNT as usize],
        phases: Vec::new(),
    };
    let Some(cgroup) = cgroup else {
        return Err(incomplete);
    };
    let mut calls = BTreeSet::new();
    for e in events {
        match e {
            Event::Sighting(s) if s.cgroup_id == cgroup => {
                incomplete.sightings[usize::from(s.phase.code())] += 1;
                if let (Phase::RuntimeFiltered, Item::Syscall { abi, nr }) = (s.phase, s.item) {
                    if let Some(name) = names::syscall_name(abi, nr) {
                        calls.insert((abi, name));
                    }
                }
            }
            Event::Phase(p) if p.cgroup_id == cgroup => incomplete.phases.push(p.to_string()),
            _ => {}
        }
    }
    if !calls.iter().any(|(_, n)| *n == "execve") {
        return Err(incomplete);
    }
    Ok(calls)
}
