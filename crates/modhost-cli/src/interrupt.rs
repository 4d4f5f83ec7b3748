//! Ctrl-C during a change: the change stops before it commits and leaves the root as it
//! was (a root made for it goes again), where the default action would end the process
//! mid-change and leave recovery to the next command. A second Ctrl-C ends it at once.

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, Once, PoisonError};

use modhost::embed::Cancel;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

/// The exit code of a command stopped by SIGINT, as a shell reports one killed by it.
pub const INTERRUPTED: u8 = 130;

/// Whether a signal stopped, or tried to stop, the change.
static SIGNALLED: AtomicBool = AtomicBool::new(false);

/// Whether the change committed: a signal after that has nothing left to stop.
static COMMITTED: AtomicBool = AtomicBool::new(false);

/// Whether the note that a signal came too late was said.
static NOTED: AtomicBool = AtomicBool::new(false);

/// What the first signal cancels, once the host is open; whether one came before it was.
static STOPS: Mutex<(Option<Cancel>, bool)> = Mutex::new((None, false));

/// Catches SIGINT, SIGTERM and SIGHUP (the terminal or SSH session closed) from now on,
/// before a root is opened: a signal while opening (which may make the root) then stops
/// the change as one during it does, rather than end the process with what opening made
/// left behind. The first says on stderr what happens; the second ends the process.
pub fn catch_signals() {
    static CAUGHT: Once = Once::new();
    CAUGHT.call_once(|| {
        let mut signals = match signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) {
            Ok(signals) => signals,
            Err(e) => {
                tracing::debug!("signals keep their default action: {e}");
                return;
            }
        };
        std::thread::spawn(move || {
            for signal in signals.forever() {
                if SIGNALLED.swap(true, Ordering::SeqCst) {
                    // As the shell reports a process the signal ended: 130 for SIGINT.
                    std::process::exit(128 + signal);
                }
                // Stopped first: a stderr that cannot be written must not keep it going.
                let mut stops = STOPS.lock().unwrap_or_else(PoisonError::into_inner);
                stops.1 = true;
                if let Some(interruption) = &stops.0 {
                    interruption.cancel();
                }
                drop(stops);
                if COMMITTED.load(Ordering::SeqCst) {
                    note_if_too_late();
                    continue;
                }
                let _ = writeln!(
                    std::io::stderr(),
                    "stopping: unless it has committed already, the change ends at its next \
                     step (a download at once, a compile under way once it ends), leaving \
                     everything as it was; interrupt again to stop at once"
                );
            }
        });
    });
}

/// Cancels `interruption` (a host's [`modhost::Host::interruption`]) at the first signal
/// [`catch_signals`] catches, or at once if one came while the host was opened.
pub fn stop_changes_on_signal(interruption: Cancel) {
    catch_signals();
    let mut stops = STOPS.lock().unwrap_or_else(PoisonError::into_inner);
    if stops.1 {
        interruption.cancel();
    }
    stops.0 = Some(interruption);
}

/// Marks the change committed, and says, once, that a signal came too late to stop it;
/// a signal from now on says so too rather than that the change is stopping.
pub fn note_if_too_late() {
    COMMITTED.store(true, Ordering::SeqCst);
    if SIGNALLED.load(Ordering::SeqCst) && !NOTED.swap(true, Ordering::SeqCst) {
        let _ = writeln!(
            std::io::stderr(),
            "note: the change had committed before it could be stopped"
        );
    }
}
