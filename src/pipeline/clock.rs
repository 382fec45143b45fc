//! Kernel timestamps (CLOCK_BOOTTIME, which counts suspend) to wall-clock milliseconds.

#[derive(Debug, Clone, Copy)]
pub struct BootClock {
    /// CLOCK_REALTIME − CLOCK_BOOTTIME at start-up, in ns.
    offset_ns: i128,
}

fn now_ns(clock: libc::clockid_t) -> i128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; both clocks exist on every Linux.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec)
}

impl BootClock {
    pub fn new() -> BootClock {
        BootClock {
            offset_ns: now_ns(libc::CLOCK_REALTIME) - now_ns(libc::CLOCK_BOOTTIME),
        }
    }

    pub fn to_unix_ms(self, boot_ns: u64) -> i64 {
        ((i128::from(boot_ns) + self.offset_ns) / 1_000_000) as i64
    }
}

impl Default for BootClock {
    fn default() -> Self {
        BootClock::new()
    }
}
