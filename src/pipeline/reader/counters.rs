//! What the reader stores in `meta` about the kernel side: its loss counters (each change
//! warned about) and its occupancy (written when it changes, so that a leak shows).

use crossbeam_channel::Sender;

use super::Reader;
use crate::kernel::events::EventReader;
use crate::kernel::Kernel;
use crate::pipeline::ToWriter;

/// `meta` key of the kernel's count of cgroups given no state (bpf/state.h).
pub(super) const CLAIM_FAILURES: &str = "claim_failures";
/// `meta` key of the count of ring-buffer records that did not decode (kernel/events.rs).
pub(super) const DECODE_ERRORS: &str = "decode_errors";

/// `meta` keys of the reader's occupancy: cgroups held, with state; syscalls attached (1/0).
const TRACKED_CGROUPS: &str = "tracked_cgroups";
const SLOTS_IN_USE: &str = "slots_in_use";
const SYSCALLS_ATTACHED: &str = "syscalls_attached";

/// The occupancy as last stored: written when it changes (checked every
/// `MISS_REPORT_EVERY`) and at shutdown, so that a leak shows in the store.
#[derive(Default)]
pub(super) struct Occupancy {
    tracked: Option<u64>,
    slots: Option<u64>,
    attached: Option<u64>,
}

impl Occupancy {
    pub(super) fn report(&mut self, reader: &Reader<'_>, always: bool) {
        let tracked = Some(reader.tracked.len() as u64);
        let slots = reader.kernel.slots_in_use();
        let attached = Some(u64::from(reader.syscall_link.is_some()));
        for (key, now, last) in [
            (TRACKED_CGROUPS, tracked, &mut self.tracked),
            (SLOTS_IN_USE, slots, &mut self.slots),
            (SYSCALLS_ATTACHED, attached, &mut self.attached),
        ] {
            if let Some(value) = now.filter(|_| always || now != *last) {
                *last = now;
                let _ = reader
                    .to_writer
                    .send(ToWriter::KernelCounter { key, value });
            }
        }
    }
}

/// The kernel's loss counters as last reported: each change is warned about and stored.
#[derive(Default)]
pub(super) struct Reported {
    ringbuf_misses: u64,
    claim_failures: u64,
}

impl Reported {
    pub(super) fn check(
        &mut self,
        kernel: &Kernel,
        events: &mut EventReader<'_>,
        to_writer: &Sender<ToWriter>,
    ) {
        if let Some(count) = events.report_decode_errors() {
            let _ = to_writer.send(ToWriter::KernelCounter {
                key: DECODE_ERRORS,
                value: count,
            });
        }
        let misses = kernel.ringbuf_misses();
        if misses != self.ringbuf_misses {
            tracing::warn!(
                "{} ring buffer reservations failed (rolled back; \
                 those calls are recorded on their next use)",
                misses - self.ringbuf_misses
            );
            self.ringbuf_misses = misses;
            let _ = to_writer.send(ToWriter::RingbufMisses(misses));
        }
        let failures = kernel.claim_failures();
        if failures != self.claim_failures {
            tracing::warn!(
                "{} cgroups got no kernel state (their slot taken, the \
                 collision hash full): those containers are not traced",
                failures - self.claim_failures
            );
            self.claim_failures = failures;
            let _ = to_writer.send(ToWriter::KernelCounter {
                key: CLAIM_FAILURES,
                value: failures,
            });
        }
    }
}
