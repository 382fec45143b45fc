//! containerd's event stream, forwarded to the watcher from a task of its own.

use containerd_client::services::v1::events_client::EventsClient;
use containerd_client::services::v1::SubscribeRequest;
use containerd_client::tonic::transport::Channel;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use super::events::SUBSCRIPTION;

/// Subscribes to the events of every namespace, forwarding them from a task of their own:
/// containerd answers a subscription only with its first event, so waiting for the answer
/// would hold the inventory (and shutdown) until something happens. The request is on its
/// way before this returns (its future was polled once), so the inventory's requests,
/// which follow it on the same connection, cannot miss what happens in between.
pub async fn subscribe(channel: &Channel) -> (mpsc::UnboundedReceiver<Forwarded>, AbortHandle) {
    let (tx, rx) = mpsc::unbounded_channel();
    let request = SubscribeRequest {
        filters: SUBSCRIPTION.iter().map(|f| f.to_string()).collect(),
    };
    let mut client = EventsClient::new(channel.clone());
    let mut subscribing = Box::pin(async move { client.subscribe(request).await });
    let answered = tokio::select! {
        biased;
        answer = &mut subscribing => Some(answer),
        _ = std::future::ready(()) => None,
    };
    let task = tokio::spawn(async move {
        let answer = match answered {
            Some(answer) => answer,
            None => subscribing.await,
        };
        let mut stream = match answer {
            Ok(response) => response.into_inner(),
            Err(e) => {
                let _ = tx.send(Err(format!("subscribing: {e}")));
                return;
            }
        };
        loop {
            let forwarded = match stream.message().await {
                Ok(Some(envelope)) => Ok(envelope),
                Ok(None) => Err("closed by containerd".to_string()),
                Err(e) => Err(e.to_string()),
            };
            let end = forwarded.is_err();
            if tx.send(forwarded).is_err() || end {
                return;
            }
        }
    });
    (rx, task.abort_handle())
}

/// An event, or why the stream ended.
pub type Forwarded = Result<containerd_client::types::Envelope, String>;
