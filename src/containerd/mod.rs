//! containerd's own API (`ctr run`, nerdctl, its CRI plugin): which containers exist in
//! every namespace, which carry the label, and where their cgroups are. The Docker watcher's
//! counterpart for hosts whose containers Docker does not know.

mod api;
pub mod describe;
pub mod events;
mod subscription;
pub mod watcher;

use std::path::PathBuf;

use containerd_client::services::v1::version_client::VersionClient;
use containerd_client::tonic::transport::Channel;

/// containerd's own socket; Docker's private containerd listens at
/// `/var/run/docker/containerd/containerd.sock`.
pub const DEFAULT_ADDRESS: &str = "/run/containerd/containerd.sock";
/// The variable `ctr` reads its address from.
pub const ADDRESS_ENV: &str = "CONTAINERD_ADDRESS";
/// Docker's namespace: its containers are traced by watching Docker (names, seccomp
/// settings), so the containerd watcher leaves them out rather than trace them twice.
pub const DOCKER_NAMESPACE: &str = "moby";

/// The socket to dial: the one given, else `$CONTAINERD_ADDRESS`, else the default; a
/// `unix://` prefix is accepted.
pub fn address(given: Option<PathBuf>) -> PathBuf {
    let chosen = given
        .map(|p| p.to_string_lossy().into_owned())
        .or_else(|| std::env::var(ADDRESS_ENV).ok().filter(|a| !a.is_empty()))
        .unwrap_or_else(|| DEFAULT_ADDRESS.to_string());
    PathBuf::from(
        chosen
            .strip_prefix("unix://")
            .map(str::to_string)
            .unwrap_or(chosen),
    )
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("connecting to containerd at {path}: {source}")]
    Transport {
        path: PathBuf,
        source: containerd_client::tonic::transport::Error,
    },
    #[error("asking containerd at {path} for its version: {source}")]
    Version {
        path: PathBuf,
        source: containerd_client::tonic::Status,
    },
}

/// A channel to containerd and its engine key (`containerd-<version>`, as stores key
/// seccomp settings by engine).
pub async fn connect(path: &std::path::Path) -> Result<(Channel, String), ConnectError> {
    let channel =
        containerd_client::connect(path)
            .await
            .map_err(|source| ConnectError::Transport {
                path: path.to_path_buf(),
                source,
            })?;
    let version = VersionClient::new(channel.clone())
        .version(())
        .await
        .map_err(|source| ConnectError::Version {
            path: path.to_path_buf(),
            source,
        })?
        .into_inner();
    Ok((channel, format!("containerd-{}", version.version)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_given_address_wins_and_unix_urls_are_paths() {
        assert_eq!(
            address(Some(
                "unix:///var/run/docker/containerd/containerd.sock".into()
            )),
            PathBuf::from("/var/run/docker/containerd/containerd.sock")
        );
        assert_eq!(address(Some("/x.sock".into())), PathBuf::from("/x.sock"));
    }
}
