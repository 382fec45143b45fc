//! `ctrace requirements`: the runtime baseline as a Tracefile, cached in the store per
//! Docker engine version (a new engine version records it again).

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::RequirementsArgs;
use crate::docker::watcher;
use crate::kernel::probe;
use crate::refusals::{run_probe, ProbeTarget};
use crate::requirements;
use crate::store;
use crate::tracefile::parse::parse_str;
use crate::tracefile::Tracefile;

pub fn run(args: RequirementsArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let docker = runtime.block_on(watcher::connect()).context(
        "cannot reach Docker (is dockerd running? `dockerd --bridge=none --iptables=false &`)",
    )?;
    // Keyed by the engine's version (`podman-<version>` for podman's compatible API).
    let version = watcher::engine_version(
        &runtime
            .block_on(docker.version())
            .context("asking Docker for its version")?,
    );
    let mut engine = if version.starts_with("podman-") {
        version.clone()
    } else {
        format!("Docker {version}")
    };
    // Another runtime than the engine's default: a baseline of its own, `VERSION/RUNTIME`.
    let oci = match &args.runtime {
        Some(name) => {
            let info = runtime
                .block_on(docker.info())
                .context("asking Docker which runtimes it has")?;
            let known: Vec<String> = info
                .runtimes
                .map(|r| r.into_keys().collect())
                .unwrap_or_default();
            if !known.contains(name) {
                anyhow::bail!(
                    "the engine has no runtime `{name}` (it has: {}); register it, e.g. \
                     `dockerd --add-runtime {name}=/usr/bin/{name}`",
                    known.join(", ")
                );
            }
            (info.default_runtime.as_deref() != Some(name.as_str())).then_some(name.as_str())
        }
        None => None,
    };
    let key = match oci {
        Some(name) => {
            engine = format!("{engine} with runtime {name}");
            store::baseline::runtime_key(&version, name)
        }
        None => version.clone(),
    };
    let conn = store::open_rw(&args.db)?;
    let cached = store::baseline::recorded(&conn, &key)?;
    let text = match &cached {
        Some(text) if !args.refresh => {
            tracing::info!("runtime baseline for {engine} from {}", args.db.display());
            text.clone()
        }
        _ => {
            probe::check_prerequisites()?;
            tracing::info!("recording the runtime baseline of {engine}");
            // The probe counts as one step.
            let progress = progress_bar(requirements::containers() as u64 + 1);
            progress.set_message("no-op containers");
            let mut baseline: Tracefile = requirements::record(&docker, &runtime, oci, &progress)?;
            // What the engine's default profile (the no-op containers') answers for the
            // calls it refuses: every profile made with this baseline answers them the same.
            progress.set_message("errno probe of the default profile");
            let refusals = runtime
                .block_on(run_probe(&docker, &ProbeTarget::default()))
                .context("probing the engine's default seccomp profile")?;
            progress.finish_and_clear();
            for (name, errno) in refusals.by_name() {
                baseline.add_errno(&name, errno);
            }
            // Also what the default setting allows, for `ctrace report` (the key the daemon
            // gives a container with default settings on this engine).
            let setting = ProbeTarget::default().setting_key(&version);
            let (errnos, allowed) = (refusals.by_name(), refusals.allowed());
            store::refusals::save(&conn, &setting, &errnos, &allowed, store::now_ms())
                .with_context(|| format!("storing the probe in `{}`", args.db.display()))?;
            // A recording is a sample; --refresh adds to what earlier ones saw.
            if let Some(earlier) = &cached {
                let source = format!("{}[requirements, engine {key}]", args.db.display());
                baseline.merge(&parse_str(earlier, std::path::Path::new(&source))?);
            }
            let text = baseline.render();
            store::baseline::save(&conn, &key, store::now_ms(), &text)?;
            text
        }
    };
    match &args.output {
        Some(output) => {
            crate::atomic_write::write_atomically(output, text.as_bytes())?;
            println!("{}", output.display());
        }
        None => std::io::stdout().write_all(text.as_bytes())?,
    }
    Ok(ExitCode::SUCCESS)
}

/// A bar on stderr when it is a terminal; hidden otherwise (logs, CI, pipes).
fn progress_bar(steps: u64) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(steps), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} recording the runtime baseline [{bar:30}] {pos}/{len} {msg} ({elapsed})",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}
