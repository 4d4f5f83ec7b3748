//! A wait that shows itself only once it has lasted a while: most compilations come from
//! the cache or take a fraction of a second, and a spinner flashed for them is noise.

use std::io::{IsTerminal, Write};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How long a compilation runs before the CLI says it is under way.
pub const SHOW_AFTER: Duration = Duration::from_secs(1);

/// A wait under way: dropping the sender (in [`Pending::finish`]) ends it.
pub struct Pending {
    started: Instant,
    done: mpsc::Sender<()>,
    shower: Option<JoinHandle<()>>,
}

impl Pending {
    /// Starts a wait that calls `show` if it is still under way `after` from now; what
    /// `show` returns is cleared when the wait ends.
    pub fn start(
        after: Duration,
        show: impl FnOnce(Duration) -> Option<ProgressBar> + Send + 'static,
    ) -> Self {
        let started = Instant::now();
        let (done, waiting) = mpsc::channel::<()>();
        let shower = std::thread::Builder::new()
            .name("progress".into())
            .spawn(move || {
                if let Err(mpsc::RecvTimeoutError::Timeout) = waiting.recv_timeout(after) {
                    let bar = show(started.elapsed());
                    // Only the end of the wait comes down this channel: it disconnects.
                    let _ = waiting.recv();
                    if let Some(bar) = bar {
                        bar.finish_and_clear();
                    }
                }
            })
            .ok();
        Self {
            started,
            done,
            shower,
        }
    }

    /// A compilation's wait: a spinner on a terminal, a `Loading` line elsewhere (a log,
    /// a pipe), once it has lasted [`SHOW_AFTER`]. `what` is shown as given: escape it.
    pub fn loading(what: String) -> Self {
        Self::start(SHOW_AFTER, move |elapsed| {
            if !std::io::stderr().is_terminal() {
                let _ = writeln!(std::io::stderr(), "{:>12} {what}", "Loading");
                return None;
            }
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr())
                .with_elapsed(elapsed);
            bar.set_style(
                ProgressStyle::with_template("{spinner} loading {msg} ({elapsed})")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.set_message(what);
            bar.enable_steady_tick(Duration::from_millis(100));
            Some(bar)
        })
    }

    /// Ends the wait, clearing what it showed, and says how long it took.
    pub fn finish(self) -> Duration {
        let Self {
            started,
            done,
            shower,
        } = self;
        drop(done);
        if let Some(shower) = shower {
            let _ = shower.join();
        }
        started.elapsed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    fn pending(after: Duration) -> (Pending, Arc<AtomicBool>) {
        let shown = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&shown);
        let pending = Pending::start(after, move |_| {
            flag.store(true, Ordering::SeqCst);
            None
        });
        (pending, shown)
    }

    #[test]
    fn a_short_wait_shows_nothing() {
        let (pending, shown) = pending(Duration::from_secs(3600));
        let took = pending.finish();
        assert!(took < Duration::from_secs(3600), "finishing did not wait");
        assert!(!shown.load(Ordering::SeqCst));
    }

    #[test]
    fn a_long_wait_shows_itself_while_it_lasts() {
        let (pending, shown) = pending(Duration::from_millis(10));
        let deadline = Instant::now() + Duration::from_secs(30);
        while !shown.load(Ordering::SeqCst) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(shown.load(Ordering::SeqCst), "shown while still waiting");
        assert!(pending.finish() >= Duration::from_millis(10));
    }
}
