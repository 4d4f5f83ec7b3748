//! Ctrl-C during a change: the change stops before it commits and leaves the root as it
//! was (a root made for it goes again), where the default action would end the process
//! mid-change and leave recovery to the next command. A second Ctrl-C ends it at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use signal_hook::consts::{SIGINT, SIGTERM};

/// The exit code of a command stopped by SIGINT, as a shell reports one killed by it.
pub const INTERRUPTED: u8 = 130;

/// Sets `flag` (a host's [`modhost::Host::interruption`]) at the first SIGINT or SIGTERM,
/// saying on stderr what happens; ends the process at the second.
pub fn stop_changes_on_signal(flag: Arc<AtomicBool>) {
    let mut signals = match signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) {
        Ok(signals) => signals,
        Err(e) => {
            tracing::debug!("signals keep their default action: {e}");
            return;
        }
    };
    std::thread::spawn(move || {
        for signal in signals.forever() {
            if flag.swap(true, Ordering::SeqCst) {
                std::process::exit(128 + signal);
            }
            eprintln!(
                "stopping: the change ends before it is committed, leaving everything as it \
                 was (once a compile or a module's call under way ends); interrupt again to \
                 stop at once"
            );
        }
    });
}
