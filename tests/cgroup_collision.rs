//! A cgroup v1 directory with a traced container's cgroup id. On a hybrid host each hierarchy
//! numbers its cgroups on its own (a cgroup's id is its kernfs node id, its directory's inode
//! number), so a v1 cgroup can carry the id a container has on the unified hierarchy. Removing
//! it must leave the container traced: `cgroup_rmdir` keeps the unified hierarchy only, as
//! `cgroup_mkdir` does (bpf/ctrace.bpf.c). Root, a real dockerd and a hybrid host.
//!
//! How the collision is arranged. Kernfs gives each new node the next id of its hierarchy, and
//! a new cgroup takes one for its directory and one per control file. Every cgroup below a
//! hierarchy's root has the same files (in v1; in the unified hierarchy while no controller is
//! enabled, as on a hybrid host), so ids there advance by a fixed stride (here pids 9, unified
//! 19) and keep their residue modulo it, whoever makes cgroups. The test learns each
//! hierarchy's stride and next id from directories of its own, makes `k` cgroups on the
//! unified hierarchy so that the container started next gets an id T that a v1 hierarchy's
//! progression reaches (T ≡ its next id, modulo its stride, and ahead of it), then makes v1
//! cgroups there until one has id T. Another process making cgroups meanwhile can shift T or
//! take T first: the attempt is then made again with a new container (bounded).

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{docker, root_env, run_detached, section, unique, Daemon};

const UNIFIED: &str = "/sys/fs/cgroup/unified";
/// v1 hierarchies to make cgroups in, light ones first (no memory: its cgroups linger).
const V1: [&str; 7] = [
    "pids", "cpu", "cpuacct", "freezer", "devices", "blkio", "systemd",
];
const ATTEMPTS: usize = 6;
/// Cgroups one tree may make (and remove) in the whole test.
const BUDGET: u64 = 40_000;

/// A directory of the test's own in one hierarchy, whose children are made one at a time.
/// Dropped (also when the test fails), it removes what is left, deepest first.
struct Tree {
    dir: PathBuf,
    /// The child that exists, if any.
    child: Option<PathBuf>,
    /// Children made so far (mkdirs).
    made: u64,
    /// How far the hierarchy's ids advance per cgroup.
    stride: u64,
}

impl Tree {
    fn new(hierarchy: &Path) -> Option<Tree> {
        let dir = hierarchy.join(format!("ctrace-collision-test-{}", std::process::id()));
        fs::create_dir(&dir).ok()?;
        let mut tree = Tree {
            dir,
            child: None,
            made: 0,
            stride: 0,
        };
        tree.stride = tree.measure_stride()?;
        Some(tree)
    }

    fn hierarchy(&self) -> String {
        let parent = self.dir.parent().unwrap_or(&self.dir);
        parent.display().to_string()
    }

    /// Makes the next child; returns its id.
    fn make(&mut self) -> u64 {
        assert!(
            self.made < BUDGET,
            "{} cgroups made in {} without the collision",
            self.made,
            self.hierarchy()
        );
        self.remove_child();
        self.made += 1;
        let path = self.dir.join(format!("c{}", self.made));
        if let Err(e) = fs::create_dir(&path) {
            panic!("mkdir {}: {e}", path.display());
        }
        self.child = Some(path.clone());
        match fs::metadata(&path) {
            Ok(meta) => meta.ino(),
            Err(e) => panic!("stat {}: {e}", path.display()),
        }
    }

    fn remove_child(&mut self) {
        if let Some(path) = self.child.take() {
            if let Err(e) = fs::remove_dir(&path) {
                panic!("rmdir {}: {e}", path.display());
            }
        }
    }

    /// The id of a child made and removed at once.
    fn probe(&mut self) -> u64 {
        let id = self.make();
        self.remove_child();
        id
    }

    /// The smallest gap between consecutive children; others' cgroups can only widen one by
    /// whole strides, so every gap must be a multiple of it.
    fn measure_stride(&mut self) -> Option<u64> {
        for _ in 0..5 {
            let ids = [self.probe(), self.probe(), self.probe()];
            let gaps = [ids[1].checked_sub(ids[0])?, ids[2].checked_sub(ids[1])?];
            let stride = gaps[0].min(gaps[1]);
            if stride > 1 && gaps.iter().all(|g| g % stride == 0) {
                return Some(stride);
            }
        }
        None
    }

    /// Makes children until one has id `target`, and keeps it; an error when an id goes
    /// past it, or one is not on its progression.
    fn walk_to(&mut self, target: u64) -> Result<u64, String> {
        let start = self.made;
        loop {
            let id = self.make();
            if id == target {
                return Ok(self.made - start);
            }
            self.remove_child();
            if id > target || (target - id) % self.stride != 0 {
                return Err(format!(
                    "{}: id {id} (stride {}) does not lead to {target}",
                    self.hierarchy(),
                    self.stride
                ));
            }
        }
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        if let Some(path) = self.child.take() {
            let _ = fs::remove_dir(path);
        }
        let _ = fs::remove_dir(&self.dir);
    }
}

/// The labelled container; removed when dropped, even when the test fails.
struct Container(String);

impl Container {
    /// Its cgroup id on the unified hierarchy (the inode number of its directory there).
    fn cgroup_id(&self) -> u64 {
        let out = docker(&["inspect", "-f", "{{.State.Pid}}", &self.0]);
        let pid: u32 = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("the PID of container {}: {e}", self.0));
        let relative = ctrace::docker::cgroup::cgroup_of_pid(pid).expect("its cgroup");
        let dir = Path::new(UNIFIED).join(relative.trim_start_matches('/'));
        fs::metadata(&dir)
            .unwrap_or_else(|e| panic!("stat {}: {e}", dir.display()))
            .ino()
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = docker(&["rm", "-f", &self.0]);
    }
}

/// The tree to walk and how many unified cgroups to make first, the cheapest in cgroups made:
/// the container's id T = next2 + k * stride2 must be on the tree's progression, a few
/// strides ahead of its next id (the container and a probe make one there each).
fn plan(next2: u64, stride2: u64, trees: &[Tree], nexts: &[u64]) -> Option<(usize, u64)> {
    let mut best: Option<(u64, usize, u64)> = None;
    for (i, (tree, &next)) in trees.iter().zip(nexts).enumerate() {
        let lowest = next + 3 * tree.stride;
        let k0 = lowest.saturating_sub(next2).div_ceil(stride2);
        let fits = (k0..k0 + tree.stride).find(|k| (next2 + k * stride2 - next) % tree.stride == 0);
        if let Some(k) = fits {
            let cost = k + (next2 + k * stride2 - next) / tree.stride;
            if best.is_none_or(|(c, _, _)| cost < c) {
                best = Some((cost, i, k));
            }
        }
    }
    best.map(|(_, i, k)| (i, k))
}

fn syscalls(tracefile: &str) -> Vec<String> {
    section(tracefile, "SYSCALLS")
}

#[test]
fn removing_a_v1_cgroup_with_a_traced_containers_id_leaves_it_traced() {
    let Some(_env) = root_env() else { return };
    if !Path::new(UNIFIED).join("cgroup.procs").exists() {
        eprintln!("SKIPPED: not a hybrid cgroup host (no cgroup2 at {UNIFIED})");
        return;
    }
    let daemon = Daemon::start(&["--cgroup-state", "slots"]);
    let Some(mut unified) = Tree::new(Path::new(UNIFIED)) else {
        panic!("cannot make cgroups of our own in {UNIFIED}");
    };
    let mut trees: Vec<Tree> = V1
        .iter()
        .map(|h| Path::new("/sys/fs/cgroup").join(h))
        .filter(|p| p.join("cgroup.procs").exists())
        .filter_map(|p| Tree::new(&p))
        .collect();
    assert!(!trees.is_empty(), "no v1 hierarchy to make cgroups in");

    let mut failed = Vec::new();
    for attempt in 1..=ATTEMPTS {
        let next2 = unified.probe() + unified.stride;
        let nexts: Vec<u64> = trees.iter_mut().map(|t| t.probe() + t.stride).collect();
        let Some((planned, k)) = plan(next2, unified.stride, &trees, &nexts) else {
            panic!("no v1 hierarchy's ids can meet the unified one's (strides, next ids)");
        };
        for _ in 0..k {
            unified.probe();
        }
        let label = unique("collision");
        let container = Container(run_detached(&label, &["sleep", "60"]));
        let target = container.cgroup_id();
        let predicted = next2 + k * unified.stride;

        // The daemon traces it: its state is in a slot (or the hash) under this id.
        let before = daemon.wait_tracefile(&label, |t| !syscalls(t).is_empty());
        assert!(
            !syscalls(&before).contains(&"mkdir".to_string()),
            "{before}"
        );
        let rows = daemon.query(&format!(
            "SELECT cgroup_id FROM containers WHERE container_id = '{}'",
            container.0
        ));
        assert_eq!(
            rows,
            vec![vec![target.to_string()]],
            "the store's cgroup id"
        );

        // Walk the planned tree first; another one may fit if something shifted the id.
        let mut order: Vec<usize> = (0..trees.len()).collect();
        order.sort_by_key(|&i| i != planned);
        let mut walked = None;
        for i in order {
            match trees[i].walk_to(target) {
                Ok(steps) => {
                    walked = Some((i, steps));
                    break;
                }
                Err(why) => failed.push(format!("attempt {attempt}: {why}")),
            }
        }
        let Some((i, steps)) = walked else {
            eprintln!(
                "attempt {attempt}: container id {target} (predicted {predicted}) reached by \
                 no v1 hierarchy; trying again with a new container"
            );
            continue;
        };
        let made: u64 = trees.iter().map(|t| t.made).sum::<u64>() + unified.made;
        eprintln!(
            "collision on attempt {attempt}: container cgroup id {target} (predicted \
             {predicted}, after {k} cgroups made in {UNIFIED}, stride {}); v1 cgroup {} has it \
             after {steps} steps in {} (stride {}); {made} mkdirs in all",
            unified.stride,
            trees[i]
                .child
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            trees[i].hierarchy(),
            trees[i].stride
        );

        // The v1 cgroup with the container's id goes; the container must stay traced.
        trees[i].remove_child();
        let out = docker(&["exec", &container.0, "mkdir", "/after-collision"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let path = daemon.data().join(&label);
            let text = fs::read_to_string(&path).unwrap_or_default();
            if syscalls(&text).contains(&"mkdir".to_string()) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the container's mkdir after the removal of a v1 cgroup with its id {target} \
                 was not recorded within 10 s: the container lost its kernel state. \
                 Tracefile:\n{text}\nctrace stderr:\n{}",
                daemon.stderr()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let rows = daemon.query(&format!(
            "SELECT count(*) FROM sighting_details WHERE tracefile = '{label}' \
             AND kind = 'syscall' AND name = 'mkdir' AND init = 0"
        ));
        assert_ne!(rows, vec![vec!["0".to_string()]], "mkdir in the store");
        return;
    }
    panic!(
        "no collision in {ATTEMPTS} attempts:\n{}",
        failed.join("\n")
    );
}
