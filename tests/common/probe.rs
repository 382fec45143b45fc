//! The errno probe (ctrace::refusals) run from a test on the shared dockerd.

use ctrace::refusals::{run_probe, ProbeTarget, Refusals};

pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// What `target` answers for every probed number; panics naming the target on failure.
pub fn measure(target: &ProbeTarget) -> Refusals {
    block_on(async {
        let docker = ctrace::docker::watcher::connect().await.unwrap();
        run_probe(&docker, target).await
    })
    .unwrap_or_else(|e| panic!("probe of {}: {e}", target.key()))
}
