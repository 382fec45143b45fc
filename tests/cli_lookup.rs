//! `ctrace syscall` and `ctrace capability` through the real binary: look-ups by number,
//! name and prefix, and what is not found (exit 2, the query named).

mod common;

use common::{code, ctrace, stderr, stdout};

#[test]
fn syscall_lookup() {
    let out = ctrace(&["syscall", "83"]);
    assert_eq!((code(&out), stdout(&out).as_str()), (0, "83\tmkdir\n"));
    let out = ctrace(&["syscall", "--abi", "i386", "39"]);
    assert_eq!((code(&out), stdout(&out).as_str()), (0, "39\tmkdir\n"));
    let out = ctrace(&["syscall", "mkdir"]);
    assert_eq!(code(&out), 0);
    assert!(stdout(&out).contains("83\tmkdir\n") && stdout(&out).contains("258\tmkdirat\n"));
    let out = ctrace(&["syscall", "--abi", "i386", "_llseek"]);
    assert_eq!(stdout(&out), "140\t_llseek\n");
    let out = ctrace(&["syscall"]);
    assert!(stdout(&out).lines().count() > 300);
    for query in ["nosuchcall", "99999"] {
        let out = ctrace(&["syscall", query]);
        assert_eq!(code(&out), 2, "{query}");
        assert!(stderr(&out).contains(query), "{}", stderr(&out));
    }
    assert_eq!(code(&ctrace(&["syscall", "--abi", "sparc", "1"])), 2);
}

#[test]
fn capability_lookup() {
    let out = ctrace(&["capability", "0"]);
    assert_eq!(
        (code(&out), stdout(&out).as_str()),
        (0, "0\tchown\tCAP_CHOWN\n")
    );
    let out = ctrace(&["capability", "CAP_NET_RAW"]);
    assert_eq!(stdout(&out), "13\tnet_raw\tCAP_NET_RAW\n");
    let out = ctrace(&["capability", "sys_"]);
    assert!(stdout(&out).contains("21\tsys_admin\tCAP_SYS_ADMIN\n"));
    let out = ctrace(&["capability"]);
    assert!(stdout(&out).lines().count() >= 41);
    let out = ctrace(&["capability", "fly"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("fly"));
}
