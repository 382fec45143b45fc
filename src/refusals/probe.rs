//! Runs the errno probe in a container with a traced container's seccomp settings.

use std::time::Duration;

use bollard::errors::Error as DockerError;
use bollard::models::{ContainerCreateBody, HostConfig, HostConfigLogConfig};
use bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptions, LogsOptions, RemoveContainerOptions,
    WaitContainerOptions,
};
use bollard::Docker;
use futures_util::StreamExt;

use super::{ParseError, ProbeTarget, Refusals};

/// The probe, built by build.rs from `errno_probe.c` (static, x86_64).
const PROBE_ELF: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/errno_probe"));
const IMAGE_REPO: &str = "ctrace-errno-probe";
const BINARY: &str = "errno_probe";
/// Marks the probe's containers (never `ctrace.tracefile`: they are not traced), with the
/// pid of the process that started them.
const LABEL: &str = "ctrace.errno-probe";
/// Start to exit; a run takes well under a second.
const RUN_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("errno probe: building the image's tar archive: {0}")]
    ImageArchive(#[source] std::io::Error),
    #[error("errno probe: looking up image {image}: {source}")]
    InspectImage {
        image: String,
        #[source]
        source: DockerError,
    },
    #[error("errno probe: importing image {image}: {source}")]
    ImportImage {
        image: String,
        #[source]
        source: DockerError,
    },
    #[error("errno probe: creating the container: {0}")]
    CreateContainer(#[source] DockerError),
    #[error("errno probe: starting container {id}: {source}")]
    StartContainer {
        id: String,
        #[source]
        source: DockerError,
    },
    #[error("errno probe: waiting for container {id}: {source}")]
    WaitContainer {
        id: String,
        #[source]
        source: DockerError,
    },
    #[error("errno probe: container {id} still ran after {timeout:?}")]
    Timeout { id: String, timeout: Duration },
    #[error("errno probe: reading the logs of container {id}: {source}")]
    ReadLogs {
        id: String,
        #[source]
        source: DockerError,
    },
    #[error("errno probe: removing container {id}: {source}")]
    RemoveContainer {
        id: String,
        #[source]
        source: DockerError,
    },
    #[error("errno probe: exited with status {code} (137: killed, 159: SIGSYS, the profile kills or traps calls): {stderr}")]
    Exited { code: i64, stderr: String },
    #[error("{source}; its output was:\n{output}")]
    Output {
        output: String,
        #[source]
        source: ParseError,
    },
}

/// What the seccomp setting of `target` answers for every x86_64 and i386 number. Starts
/// nothing when the target is unconfined; otherwise runs the probe in a container with the
/// same settings (network none), and removes the container in all cases.
pub async fn run_probe(docker: &Docker, target: &ProbeTarget) -> Result<Refusals, ProbeError> {
    if target.is_unconfined() {
        return Ok(Refusals::default());
    }
    let image = ensure_image(docker, &image()).await?;
    let body = ContainerCreateBody {
        image: Some(image),
        cmd: Some(vec![format!("/{BINARY}")]),
        labels: Some([(LABEL.to_string(), std::process::id().to_string())].into()),
        host_config: Some(HostConfig {
            network_mode: Some("none".into()),
            security_opt: Some(target.security_opt.clone()),
            cap_add: Some(target.cap_add.clone()),
            cap_drop: Some(target.cap_drop.clone()),
            privileged: Some(target.privileged),
            // Logs are read back after the exit: a driver that keeps them.
            log_config: Some(HostConfigLogConfig {
                typ: Some("json-file".into()),
                config: None,
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let id = docker
        .create_container(None::<CreateContainerOptions>, body)
        .await
        .map_err(ProbeError::CreateContainer)?
        .id;
    let ran = run(docker, &id).await;
    let removed = docker
        .remove_container(
            &id,
            Some(RemoveContainerOptions {
                force: true,
                ..Default::default()
            }),
        )
        .await
        .map_err(|source| ProbeError::RemoveContainer {
            id: id.clone(),
            source,
        });
    let output = ran?;
    removed?;
    Refusals::parse(&output).map_err(|source| ProbeError::Output { output, source })
}

/// Starts the container, waits for its exit and returns its stdout.
async fn run(docker: &Docker, id: &str) -> Result<String, ProbeError> {
    docker
        .start_container(id, None)
        .await
        .map_err(|source| ProbeError::StartContainer {
            id: id.to_string(),
            source,
        })?;
    let wait = async {
        let mut code = 0;
        let mut stream = docker.wait_container(id, None::<WaitContainerOptions>);
        while let Some(step) = stream.next().await {
            match step {
                Ok(exit) => code = exit.status_code,
                // bollard reports a non-zero exit status as an error.
                Err(DockerError::DockerContainerWaitError { code: c, .. }) => code = c,
                Err(source) => {
                    return Err(ProbeError::WaitContainer {
                        id: id.to_string(),
                        source,
                    })
                }
            }
        }
        Ok(code)
    };
    let code = tokio::time::timeout(RUN_TIMEOUT, wait)
        .await
        .map_err(|_| ProbeError::Timeout {
            id: id.to_string(),
            timeout: RUN_TIMEOUT,
        })??;
    let (stdout, stderr) = logs(docker, id).await?;
    if code != 0 {
        return Err(ProbeError::Exited {
            code,
            stderr: stderr.trim().to_string(),
        });
    }
    Ok(stdout)
}

async fn logs(docker: &Docker, id: &str) -> Result<(String, String), ProbeError> {
    let options = LogsOptions {
        stdout: true,
        stderr: true,
        ..Default::default()
    };
    let mut stream = docker.logs(id, Some(options));
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(bollard::container::LogOutput::StdOut { message }) => {
                stdout.extend_from_slice(&message)
            }
            Ok(bollard::container::LogOutput::StdErr { message }) => {
                stderr.extend_from_slice(&message)
            }
            Ok(_) => {}
            Err(source) => {
                return Err(ProbeError::ReadLogs {
                    id: id.to_string(),
                    source,
                })
            }
        }
    }
    Ok((
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    ))
}

/// `ctrace-errno-probe:<hash of the binary>`: a new build gets a new image. Tests trace the
/// probe itself (`/errno_probe`) as a workload.
pub fn image() -> String {
    format!("{IMAGE_REPO}:{:012x}", fnv1a(PROBE_ELF) >> 16)
}

/// FNV-1a (64 bits): stable across builds and toolchains, unlike `DefaultHasher`.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn image_tar() -> std::io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(PROBE_ELF.len() as u64);
    header.set_mode(0o755);
    header.set_cksum();
    builder.append_data(&mut header, BINARY, PROBE_ELF)?;
    builder.into_inner()
}

/// Imports the probe image unless it is there already; returns its id, which containers are
/// created from: podman stores an imported `name:tag` as `localhost/name:tag` and resolves
/// the short name to `docker.io/library/name:tag` when a container is created from it.
pub async fn ensure_image(docker: &Docker, image: &str) -> Result<String, ProbeError> {
    match docker.inspect_image(image).await {
        Ok(inspected) => return Ok(inspected.id.unwrap_or_else(|| image.to_string())),
        Err(DockerError::DockerResponseServerError {
            status_code: 404, ..
        }) => {}
        Err(source) => {
            return Err(ProbeError::InspectImage {
                image: image.to_string(),
                source,
            })
        }
    }
    // The tag goes in `repo` (`name:tag`): podman's compatible API ignores a separate `tag`
    // on an import (it stored `name:latest`); Docker takes either form.
    let options = CreateImageOptions {
        from_src: Some("-".into()),
        repo: Some(image.into()),
        ..Default::default()
    };
    let tar = image_tar().map_err(ProbeError::ImageArchive)?;
    let body = bollard::body_full(bytes::Bytes::from(tar));
    let mut progress = docker.create_image(Some(options), Some(body), None);
    while let Some(step) = progress.next().await {
        step.map_err(|source| ProbeError::ImportImage {
            image: image.to_string(),
            source,
        })?;
    }
    match docker.inspect_image(image).await {
        Ok(inspected) => Ok(inspected.id.unwrap_or_else(|| image.to_string())),
        Err(source) => Err(ProbeError::InspectImage {
            image: image.to_string(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_tag_names_the_binary() {
        let image = image();
        assert!(image.starts_with("ctrace-errno-probe:"));
        assert_eq!(image.len(), "ctrace-errno-probe:".len() + 12);
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
