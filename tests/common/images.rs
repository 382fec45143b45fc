//! Test images, made with `docker import` from host files plus busybox.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Once;

pub const IMAGE: &str = "ctrace-test/busybox";

/// Imports the test image (busybox) once per test binary.
pub(super) fn ensure_image() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let busybox = Path::new("/bin/busybox");
        assert!(
            busybox.exists(),
            "/bin/busybox missing: apt-get install busybox-static"
        );
        import_image(IMAGE, &[(busybox, "bin/busybox")]);
    });
}

/// Makes an image from files (host path, path in image) plus busybox applet links.
pub fn import_image(tag: &str, files: &[(&Path, &str)]) {
    import_image_into(None, tag, files);
}

/// As `import_image`, into the dockerd at `host` (a `docker --host` value) if given.
pub fn import_image_into(host: Option<&str>, tag: &str, files: &[(&Path, &str)]) {
    let root = tempfile::tempdir().expect("tempdir");
    for (src, dst) in files {
        let target = root.path().join(dst);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(src, &target).unwrap();
    }
    std::fs::create_dir_all(root.path().join("bin")).unwrap();
    for applet in [
        "sh", "mkdir", "chown", "chroot", "echo", "cat", "sleep", "true", "ls", "touch",
    ] {
        let link = root.path().join("bin").join(applet);
        if !link.exists() {
            std::os::unix::fs::symlink("busybox", link).unwrap();
        }
    }
    for dir in ["tmp", "proc", "sys", "dev", "etc"] {
        std::fs::create_dir_all(root.path().join(dir)).unwrap();
    }
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "tar -C {} -c . | docker {} import - {tag}",
            root.path().display(),
            host.map(|h| format!("--host {h}")).unwrap_or_default()
        ))
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "docker import of {tag} failed");
}
