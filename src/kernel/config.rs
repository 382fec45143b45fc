//! What the daemon chooses about the kernel side before loading: the state backend, the
//! slots, the placement cache, and the size of the `events` ring buffer.

use super::{KernelError, StateMap, MAX_SLOTS};

/// The `events` ring buffer's size in bpf/state.h (`CTRACE_RINGBUF_SIZE`, bytes): 4 MiB.
pub const DEFAULT_RINGBUF_SIZE: u32 = super::codes::consts::RINGBUF_SIZE;

#[derive(Debug, Clone, Copy)]
pub struct KernelConfig {
    /// Mirror events to the trace pipe.
    pub debug: bool,
    pub state: StateMap,
    /// Slots in use (a power of two up to MAX_SLOTS); fewer only to test collisions.
    pub slots: u32,
    /// The per-CPU placement cache (bpf/task_cache.h); off only to compare without it.
    pub task_cache: bool,
    /// Bytes of the `events` ring buffer: a power of two and a multiple of the page size.
    pub ringbuf_size: u32,
}

impl Default for KernelConfig {
    fn default() -> KernelConfig {
        KernelConfig {
            debug: false,
            state: StateMap::default(),
            slots: MAX_SLOTS,
            task_cache: true,
            ringbuf_size: DEFAULT_RINGBUF_SIZE,
        }
    }
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(size).ok().filter(|&s| s > 0).unwrap_or(4096)
}

/// Checks a ring buffer size in bytes: the kernel wants a power of two and a multiple of the
/// page size (libbpf would round anything else up without a word); `max_entries` is a u32.
pub fn check_ringbuf_size(bytes: u64) -> Result<u32, String> {
    let page = page_size().max(4096);
    let max = 1u64 << 31;
    if bytes < page || bytes > max || !bytes.is_power_of_two() || bytes % page != 0 {
        return Err(format!(
            "the ring buffer size must be a power of two, a multiple of the page size \
             ({page} bytes), from {page} to {max} bytes (e.g. 65536, 4194304); {bytes} is not"
        ));
    }
    u32::try_from(bytes).map_err(|e| format!("{bytes} bytes: {e}"))
}

/// `--ringbuf-size BYTES` (clap's value parser).
pub fn parse_ringbuf_size(text: &str) -> Result<u32, String> {
    let bytes: u64 = text
        .trim()
        .parse()
        .map_err(|e| format!("`{text}` is not a number of bytes: {e}"))?;
    check_ringbuf_size(bytes)
}

/// Sizes the `events` map before load, refusing a size the kernel would not take as given.
pub(super) fn size_ring_buffer(
    map: &mut libbpf_rs::OpenMapMut<'_>,
    bytes: u32,
) -> Result<(), KernelError> {
    let invalid = |e: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, e);
    check_ringbuf_size(u64::from(bytes))
        .map_err(|e| KernelError::Load(libbpf_rs::Error::from(invalid(e))))?;
    map.set_max_entries(bytes).map_err(KernelError::Load)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_buffer_sizes() {
        let page = page_size().max(4096);
        assert_eq!(parse_ringbuf_size(&page.to_string()), Ok(page as u32));
        assert_eq!(parse_ringbuf_size("4194304"), Ok(DEFAULT_RINGBUF_SIZE));
        assert_eq!(parse_ringbuf_size("2147483648"), Ok(1 << 31));
        for bad in [
            "0",
            "1",
            "2048",
            "5000",
            "12288",
            "4294967296",
            "-4096",
            "4k",
            "",
        ] {
            assert!(parse_ringbuf_size(bad).is_err(), "{bad} accepted");
        }
        let message = parse_ringbuf_size("12288").unwrap_err();
        assert!(
            message.contains("power of two") && message.contains("12288"),
            "{message}"
        );
    }
}
