//! The floor under a transfer's speed, which the client's timeout alone does not set.

use std::time::{Duration, Instant};

/// The slowest a server may send, in bytes per second averaged over each stretch of the
/// client's timeout (as curl's `--speed-limit` with `--speed-time`): a server trickling a
/// byte at a time never goes silent long enough for the timeout, and would otherwise hold
/// a download, and whoever waits for it, until [`crate::MAX_TRANSFER_TIME`].
pub(crate) const MIN_TRANSFER_RATE: u64 = 1024;

/// How fast a server sends, stretch by stretch: each stretch as long as the timeout must
/// bring [`MIN_TRANSFER_RATE`] bytes a second.
pub(crate) struct Pace {
    stretch: Duration,
    started: Instant,
    bytes: u64,
}

impl Pace {
    /// A pace measured over stretches of `stretch`, from now.
    pub(crate) fn new(stretch: Duration) -> Self {
        Pace {
            stretch,
            started: Instant::now(),
            bytes: 0,
        }
    }

    /// Counts `n` bytes received; `Err` with why the transfer is given up on when the
    /// stretch just ended brought too few.
    pub(crate) fn received(&mut self, n: usize) -> std::result::Result<(), String> {
        self.bytes += n as u64;
        let elapsed = self.started.elapsed();
        if elapsed < self.stretch {
            return Ok(());
        }
        let needed = (MIN_TRANSFER_RATE as f64 * elapsed.as_secs_f64()) as u64;
        if self.bytes < needed {
            return Err(format!(
                "the server sent only {} bytes in {:.1} s, slower than the {MIN_TRANSFER_RATE} \
                 bytes a second a transfer needs ([updates] timeout_secs sets the stretch \
                 measured): it is given up on",
                self.bytes,
                elapsed.as_secs_f64()
            ));
        }
        *self = Pace::new(self.stretch);
        Ok(())
    }
}
