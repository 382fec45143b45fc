//! Errno fidelity, measured (root, real dockerd): the errno probe is traced as a workload
//! under Docker's default profile, a profile is generated from its Tracefile, and the probe
//! then measures both profiles. Every x86_64 number the generated profile refuses must get
//! the errno the default profile gave it (where the default refused it too), and nothing the
//! default refused may be allowed.

mod common;

use common::{block_on, ctrace_ok, measure, path, root_env, run_container, unique, Daemon};
use ctrace::abi::Abi;
use ctrace::names::syscall_name;
use ctrace::refusals::{probe, ProbeTarget, PROBED_NUMBERS};

#[test]
fn a_generated_profile_answers_every_refused_call_as_the_traced_profile_did() {
    let Some(_env) = root_env() else { return };
    let image = probe::image();
    block_on(async {
        let docker = ctrace::docker::watcher::connect().await.unwrap();
        probe::ensure_image(&docker, &image).await.unwrap();
    });
    let daemon = Daemon::start(&[]);
    let name = unique("fidelity");
    run_container(Some(&name), &image, &["/errno_probe"]);
    let tracefile = daemon.wait_tracefile_final(&name, |t| {
        t.lines().any(|l| l == "clone3 ENOSYS") && t.lines().any(|l| l == "exit_group")
    });
    let requirements = daemon.dir.path().join("requirements");
    ctrace_ok(&[
        "requirements",
        "--db",
        path(&daemon.db()),
        "--output",
        path(&requirements),
    ]);
    let profile = daemon.dir.path().join("profile.json");
    ctrace_ok(&[
        "options",
        "--output",
        path(&profile),
        "--requirements",
        path(&requirements),
        path(&daemon.data().join(&name)),
    ]);
    let json = std::fs::read_to_string(&profile).unwrap();

    let traced = measure(&ProbeTarget::default());
    let generated = measure(&ProbeTarget {
        security_opt: vec![format!("seccomp={json}")],
        ..Default::default()
    });
    let empty = Default::default();
    let (t, g) = (
        traced.errnos.get(&Abi::X86_64).unwrap_or(&empty),
        generated.errnos.get(&Abi::X86_64).unwrap_or(&empty),
    );
    let mut wrong = Vec::new();
    for nr in 0..PROBED_NUMBERS {
        let label = syscall_name(Abi::X86_64, nr)
            .map(str::to_string)
            .unwrap_or_else(|| format!("#{nr}"));
        match (t.get(&nr), g.get(&nr)) {
            (Some(was), Some(now)) if was != now => {
                wrong.push(format!("{label}: errno {now}, traced {was}"))
            }
            (Some(was), None) => wrong.push(format!("{label}: allowed, traced refused ({was})")),
            _ => {}
        }
    }
    assert!(
        wrong.is_empty(),
        "{} numbers answered otherwise than when traced:\n{}\nTracefile:\n{tracefile}\nprofile:\n{json}",
        wrong.len(),
        wrong.join("\n")
    );
    // The generated profile is tighter: it refuses much that the default allowed.
    let newly_refused = g.keys().filter(|nr| !t.contains_key(nr)).count();
    assert!(newly_refused > 100, "only {newly_refused} more refused");
    assert_eq!(g.get(&435), Some(&38), "clone3 answers ENOSYS");
}
