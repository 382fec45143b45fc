//! Programs assembled for a test (binutils), and the i386 image made from them.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::images::import_image;

/// A static i386 program: mkdir("/i386dir"), write(1, "ok\n"), exit(0), via int 0x80.
const I386_ASM: &str = r#"
    .globl _start
    .text
_start:
    movl $39, %eax
    movl $dir, %ebx
    movl $0755, %ecx
    int $0x80
    movl $4, %eax
    movl $1, %ebx
    movl $msg, %ecx
    movl $3, %edx
    int $0x80
    movl $1, %eax
    xorl %ebx, %ebx
    int $0x80
    .data
dir: .asciz "/i386dir"
msg: .ascii "ok\n"
"#;

/// A static x86_64 program that makes the native calls with i386's numbers of /prog32's calls
/// (getpid 39, stat 4, write 1), then execs /prog32: in one task, the same numbers in two ABIs.
const NATIVE_THEN_I386_ASM: &str = r#"
    .globl _start
    .text
_start:
    movl $39, %eax
    syscall
    movl $4, %eax
    xorl %edi, %edi
    syscall
    movl $1, %eax
    movl $1, %edi
    leaq path(%rip), %rsi
    xorl %edx, %edx
    syscall
    movl $59, %eax
    leaq path(%rip), %rdi
    leaq argv(%rip), %rsi
    xorl %edx, %edx
    syscall
    movl $60, %eax
    movl $1, %edi
    syscall
    .data
path: .asciz "/prog32"
argv: .quad path, 0
"#;

/// Assembles and links `asm` into `dir/name` with binutils (`as`, `ld`, their extra flags).
pub fn assemble(
    dir: &Path,
    name: &str,
    asm: &str,
    as_flags: &[&str],
    ld_flags: &[&str],
) -> PathBuf {
    let (src, obj, bin) = (
        dir.join(format!("{name}.s")),
        dir.join(format!("{name}.o")),
        dir.join(name),
    );
    std::fs::write(&src, asm).unwrap();
    let ok = Command::new("as")
        .args(as_flags)
        .arg("-o")
        .arg(&obj)
        .arg(&src)
        .status()
        .unwrap()
        .success()
        && Command::new("ld")
            .args(ld_flags)
            .arg("-o")
            .arg(&bin)
            .arg(&obj)
            .status()
            .unwrap()
            .success();
    assert!(ok, "assembling {name} failed (needs binutils)");
    bin
}

pub fn build_i386_image(tag: &str) {
    let dir = tempfile::tempdir().unwrap();
    let bin = assemble(
        dir.path(),
        "prog32",
        I386_ASM,
        &["--32"],
        &["-m", "elf_i386"],
    );
    let native = assemble(
        dir.path(),
        "native-then-i386",
        NATIVE_THEN_I386_ASM,
        &[],
        &[],
    );
    import_image(
        tag,
        &[
            (Path::new("/bin/busybox"), "bin/busybox"),
            (&bin, "prog32"),
            (&native, "native-then-i386"),
        ],
    );
}

/// A static x86_64 program: a SIGUSR1 handler (writes "signalled", returns through its
/// restorer: rt_sigreturn), a 2 s nanosleep, then "done" and exit 0. Without a signal it
/// never calls rt_sigreturn.
const SIGNAL_ASM: &str = r#"
    .globl _start
    .text
_start:
    movl $13, %eax
    movl $10, %edi
    leaq act(%rip), %rsi
    xorl %edx, %edx
    movl $8, %r10d
    syscall
    movl $35, %eax
    leaq ts(%rip), %rdi
    xorl %esi, %esi
    syscall
    movl $1, %eax
    movl $1, %edi
    leaq done(%rip), %rsi
    movl $5, %edx
    syscall
    movl $231, %eax
    xorl %edi, %edi
    syscall
handler:
    movl $1, %eax
    movl $1, %edi
    leaq sig(%rip), %rsi
    movl $10, %edx
    syscall
    ret
restorer:
    movl $15, %eax
    syscall
    .data
act: .quad handler, 0x04000000, restorer, 0
ts: .quad 2, 0
done: .ascii "done\n"
sig: .ascii "signalled\n"
"#;

/// An image of [`SIGNAL_ASM`] as `/signalled`.
pub fn build_signal_image(tag: &str) {
    let dir = tempfile::tempdir().unwrap();
    let bin = assemble(dir.path(), "signalled", SIGNAL_ASM, &[], &[]);
    import_image(tag, &[(&bin, "signalled")]);
}
