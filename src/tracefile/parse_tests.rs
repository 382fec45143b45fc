//! Tests of the Tracefile parser.
use super::*;

fn parse(text: &str) -> Result<Tracefile, ParseError> {
    parse_str(text, Path::new("t"))
}

fn sample() -> Tracefile {
    let mut tf = Tracefile::default();
    tf.add_capability("chown");
    tf.add_capability("net_raw");
    for name in ["close", "execve", "mkdir", "write"] {
        tf.add_syscall(Abi::X86_64, name);
    }
    for name in ["_llseek", "exit", "socketcall", "write"] {
        tf.add_syscall(Abi::I386, name);
    }
    tf.add_syscall(Abi::X32, "read");
    tf
}

#[test]
fn round_trips_render() {
    let tf = sample();
    assert_eq!(parse(&tf.render()).unwrap(), tf);
    let empty = Tracefile::default();
    let parsed = parse(&empty.render()).unwrap();
    assert!(parsed.is_empty());
    assert_eq!(parsed.render(), empty.render());
}

#[test]
fn reads_the_original_format() {
    let tf = parse(
        "ARCH\nx86_64\n\nCAPABILITIES\nnet_raw\n\nSYSCALLS\nbind\nclose\nexecve\nopen\nsendto\n",
    )
    .unwrap();
    assert_eq!(tf.capabilities.len(), 1);
    assert_eq!(tf.syscall_count(), 5);
}

#[test]
fn tolerates_crlf_whitespace_comments_and_missing_blank_lines() {
    let tf = parse("# made by hand\r\nARCH\r\n x86_64 \r\nSYSCALLS\r\nread\r\n\r\n\r\n").unwrap();
    assert!(tf.syscalls[&Abi::X86_64].contains("read"));
}

fn line_of(err: ParseError) -> usize {
    match err {
        ParseError::UnknownSection { line, .. }
        | ParseError::UnknownSyscall { line, .. }
        | ParseError::UnknownCapability { line, .. }
        | ParseError::NotText { line, .. }
        | ParseError::ControlCharacter { line, .. }
        | ParseError::DuplicateSection { line, .. }
        | ParseError::UnsupportedArch { line, .. }
        | ParseError::SecondArch { line, .. }
        | ParseError::EmptyArch { line, .. }
        | ParseError::NotAName { line, .. } => line,
        other => panic!("no line in {other}"),
    }
}

#[test]
fn errors_name_the_line() {
    assert_eq!(line_of(parse("ARCH\nx86_64\n\nFOO\nbar\n").unwrap_err()), 4);
    assert_eq!(
        line_of(parse("SYSCALLS\nread\nnot_a_syscall\n").unwrap_err()),
        3
    );
    // i386 names are not x86_64 names, and the other way round.
    let err = parse("SYSCALLS\n_llseek\n").unwrap_err();
    assert!(err.to_string().contains("SYSCALLS:i386"), "{err}");
    assert_eq!(
        line_of(parse("SYSCALLS:i386\nnewfstatat\n").unwrap_err()),
        2
    );
    let err = parse("CAPABILITIES\nCAP_CHOWN\n").unwrap_err();
    assert!(err.to_string().contains("`chown`"), "{err}");
    assert_eq!(line_of(parse("CAPABILITIES\nchown\nfly\n").unwrap_err()), 3);
    assert_eq!(line_of(parse("ARCH\naarch64\n").unwrap_err()), 2);
    assert_eq!(line_of(parse("ARCH\n\nSYSCALLS\n").unwrap_err()), 1);
    assert_eq!(
        line_of(parse("SYSCALLS\nread\n\nSYSCALLS\n").unwrap_err()),
        4
    );
    assert_eq!(line_of(parse("SYSCALLS\nread write\n").unwrap_err()), 2);
    assert_eq!(line_of(parse("SYSCALLS\nread\n\nread\n").unwrap_err()), 4);
    assert_eq!(line_of(parse("SYSCALLS\nre\0ad\n").unwrap_err()), 2);
    assert_eq!(
        line_of(parse_bytes(b"SYSCALLS\nread\n\xff\xfe", Path::new("t")).unwrap_err()),
        3
    );
    assert!(matches!(
        parse("\n\n# nothing\n"),
        Err(ParseError::Empty { .. })
    ));
    let err = parse("SYSCALLS\nnope\n").unwrap_err().to_string();
    assert!(
        err.starts_with("t:2: unknown x86_64 system call `nope`"),
        "{err}"
    );
}

#[test]
fn refuses_large_files_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big");
    let file = File::create(&big).unwrap();
    file.set_len(100 * 1024 * 1024).unwrap();
    assert!(matches!(
        read_tracefile(&big),
        Err(ParseError::TooLarge { .. })
    ));
}

#[test]
fn directories_skip_hidden_store_and_profile_files() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("a/b")).unwrap();
    std::fs::create_dir_all(root.join(".hidden")).unwrap();
    let text = sample().render();
    for name in [
        "one",
        "a/two",
        "a/b/three",
        ".hidden/x",
        ".one.ctrace-tmp-1",
        "ctrace.db",
        "ctrace.db-wal",
        "ctrace.db-shm",
        "p.json",
    ] {
        std::fs::write(root.join(name), &text).unwrap();
    }
    let found = collect_tracefiles(root).unwrap();
    let rel: Vec<String> = found
        .iter()
        .map(|p| p.strip_prefix(root).unwrap().display().to_string())
        .collect();
    assert_eq!(rel, ["a/b/three", "a/two", "one"]);
    let (union, files) = read_union(&[root.to_path_buf()]).unwrap();
    assert_eq!(union, sample());
    assert_eq!(files.len(), 3);
    let empty = root.join("empty");
    std::fs::create_dir(&empty).unwrap();
    assert!(matches!(
        collect_tracefiles(&empty),
        Err(ParseError::EmptyDirectory { .. })
    ));
}

#[test]
fn errno_section_round_trips_and_is_checked() {
    let mut tf = sample();
    tf.add_errno("clone3", 38);
    tf.add_errno("mkdirat", 95);
    let text = tf.render();
    assert!(
        text.ends_with("\nERRNO\nclone3 ENOSYS\nmkdirat EOPNOTSUPP\n"),
        "{text}"
    );
    assert_eq!(parse(&text).unwrap(), tf);
    // Numbers are accepted too; two answers for one call combine (ENOSYS wins).
    let numeric =
        parse("SYSCALLS\nread\n\nERRNO\nclone3 38\nmkdirat 95\nmkdirat ENOSYS\n").unwrap();
    assert_eq!(numeric.errnos["clone3"], 38);
    assert_eq!(numeric.errnos["mkdirat"], 38);
    for bad in [
        "ERRNO\nclone3\n",
        "ERRNO\nclone3 ENOSUCH\n",
        "ERRNO\nclone3 0\n",
        "ERRNO\nclone3 4096\n",
        "ERRNO\nnosuchcall ENOSYS\n",
        "ERRNO\nclone3 ENOSYS extra\n",
    ] {
        assert!(
            matches!(parse(bad), Err(ParseError::BadErrno { line: 2, .. })),
            "{bad:?}: {:?}",
            parse(bad)
        );
    }
}

/// Found by tests/parsers_proptest.rs: an empty `SYSCALLS:i386` section, or no `SYSCALLS`
/// section, must read back the same after rendering.
#[test]
fn empty_and_missing_sections_read_back_the_same() {
    for text in ["SYSCALLS\nread\n\nSYSCALLS:i386\n", "CAPABILITIES\nchown\n"] {
        let tf = parse(text).unwrap();
        assert_eq!(parse(&tf.render()).unwrap(), tf, "{text:?}");
    }
}
