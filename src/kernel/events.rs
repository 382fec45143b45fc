//! The one way kernel events reach userspace: the `events` ring buffer, polled, each record
//! decoded (`event::decode`) and handed to the consumer's handler. The daemon's reader
//! (`pipeline/reader.rs`) and `requirements` both read through an [`EventReader`]. A record
//! that does not decode is counted and kept for the report (`meta.decode_errors` for the
//! daemon, a warning from both), never dropped silently.

use std::cell::{Cell, RefCell};
use std::ops::ControlFlow;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::time::Duration;

use libbpf_rs::{RingBuffer, RingBufferBuilder};

use super::event::{self, DecodeError, Event};
use super::{Kernel, KernelError};

/// Records that did not decode: how many, and the last one's error.
#[derive(Default)]
struct Undecoded {
    count: Cell<u64>,
    last: RefCell<Option<DecodeError>>,
}

pub struct EventReader<'k> {
    ring: RingBuffer<'k>,
    undecoded: Rc<Undecoded>,
    /// The count of undecodable records as last reported.
    reported: u64,
}

impl<'k> EventReader<'k> {
    /// Reads `kernel`'s events into `on_event`, which may block (back-pressure: the kernel's
    /// ring buffer then fills, and its misses are counted there). `Break` stops the current
    /// [`EventReader::consume`] with an error.
    pub fn new(
        kernel: &'k Kernel,
        mut on_event: impl FnMut(Event) -> ControlFlow<()> + 'k,
    ) -> Result<EventReader<'k>, KernelError> {
        let undecoded = Rc::new(Undecoded::default());
        let seen = Rc::clone(&undecoded);
        let mut builder = RingBufferBuilder::new();
        builder
            .add(kernel.events_map(), move |data: &[u8]| {
                match event::decode(data) {
                    Ok(event) => {
                        if on_event(event).is_break() {
                            return -1;
                        }
                    }
                    Err(e) => {
                        tracing::debug!("a ring buffer record did not decode: {e}");
                        seen.count.set(seen.count.get() + 1);
                        *seen.last.borrow_mut() = Some(e);
                    }
                }
                0
            })
            .map_err(KernelError::Events)?;
        let ring = builder.build().map_err(KernelError::Events)?;
        Ok(EventReader {
            ring,
            undecoded,
            reported: 0,
        })
    }

    /// Sleeps until the ring buffer has records, `wake` (if any) is readable, or `timeout`.
    pub fn wait(&self, wake: Option<RawFd>, timeout: Duration) -> std::io::Result<()> {
        let mut fds = [self.ring.epoll_fd(), wake.unwrap_or(-1)].map(|fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        });
        let timeout = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: `fds` is a live array of two pollfd structs, and its length is passed with
        // it; a negative fd is ignored by poll(2).
        let ready = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
        if ready < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
        Ok(())
    }

    /// Hands every record the kernel has submitted to the handler.
    pub fn consume(&self) -> Result<(), KernelError> {
        self.ring.consume().map_err(KernelError::Events)
    }

    /// Records that did not decode since the start.
    pub fn decode_errors(&self) -> u64 {
        self.undecoded.count.get()
    }

    /// Warns about records that did not decode since the last call (with the last error);
    /// returns the total when it changed.
    pub fn report_decode_errors(&mut self) -> Option<u64> {
        let count = self.decode_errors();
        if count == self.reported {
            return None;
        }
        let last = self.undecoded.last.borrow();
        let last = last.as_ref().map(ToString::to_string).unwrap_or_default();
        tracing::warn!(
            "{} ring buffer records could not be decoded (the last: {last}); \
             kernel programs and userspace disagree on the event layout",
            count - self.reported
        );
        self.reported = count;
        Some(count)
    }
}
