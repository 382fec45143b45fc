//! The few containerd calls the watcher makes, each in a namespace (containerd scopes
//! containers and tasks by the `containerd-namespace` request header).

use containerd_client::services::v1::containers_client::ContainersClient;
use containerd_client::services::v1::namespaces_client::NamespacesClient;
use containerd_client::services::v1::tasks_client::TasksClient;
use containerd_client::services::v1::{
    Container as Record, GetContainerRequest, GetRequest, ListContainersRequest,
    ListNamespacesRequest,
};
use containerd_client::tonic::transport::Channel;
use containerd_client::tonic::{Request, Status};
use containerd_client::types::v1::Status as TaskStatus;

const NAMESPACE_HEADER: &str = "containerd-namespace";

fn in_namespace<T>(message: T, namespace: &str) -> Result<Request<T>, Status> {
    let value = namespace
        .parse()
        .map_err(|_| Status::invalid_argument(format!("namespace {namespace:?}")))?;
    let mut request = Request::new(message);
    request.metadata_mut().insert(NAMESPACE_HEADER, value);
    Ok(request)
}

pub async fn namespaces(channel: &Channel) -> Result<Vec<String>, Status> {
    let listed = NamespacesClient::new(channel.clone())
        .list(ListNamespacesRequest::default())
        .await?
        .into_inner();
    Ok(listed.namespaces.into_iter().map(|n| n.name).collect())
}

pub async fn containers(channel: &Channel, namespace: &str) -> Result<Vec<Record>, Status> {
    let request = in_namespace(ListContainersRequest::default(), namespace)?;
    Ok(ContainersClient::new(channel.clone())
        .list(request)
        .await?
        .into_inner()
        .containers)
}

/// The container record, or None when containerd has no such container (any more).
pub async fn container(
    channel: &Channel,
    namespace: &str,
    id: &str,
) -> Result<Option<Record>, Status> {
    let request = in_namespace(GetContainerRequest { id: id.to_string() }, namespace)?;
    match ContainersClient::new(channel.clone()).get(request).await {
        Ok(response) => Ok(response.into_inner().container),
        Err(status) if status.code() == containerd_client::tonic::Code::NotFound => Ok(None),
        Err(status) => Err(status),
    }
}

/// The pid of the container's init process while it exists and has not exited.
pub async fn live_task_pid(
    channel: &Channel,
    namespace: &str,
    container_id: &str,
) -> Result<Option<u32>, Status> {
    let request = in_namespace(
        GetRequest {
            container_id: container_id.to_string(),
            exec_id: String::new(),
        },
        namespace,
    )?;
    let process = match TasksClient::new(channel.clone()).get(request).await {
        Ok(response) => response.into_inner().process,
        Err(status) if status.code() == containerd_client::tonic::Code::NotFound => None,
        Err(status) => return Err(status),
    };
    Ok(process
        .filter(|p| p.pid > 0 && p.status != TaskStatus::Stopped as i32)
        .map(|p| p.pid))
}
