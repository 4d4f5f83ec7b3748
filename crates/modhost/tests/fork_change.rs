//! A process forked while a change holds the root's lock (an Apache or PHP-FPM master
//! forking a worker while another thread installs) shares the lock's open file. The
//! child's changes are refused at once, never left waiting for the parent's lock, and the
//! parent's next change does not wait for the child to end. Its own test binary: a fork
//! from a test binary running other tests on other threads could copy a lock one of
//! them holds.

use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use modhost::{Event, Host, Options, Reporter};
use modhost_test_support::package;

/// Holds the change that reports unpacking `held` until told to go on.
struct Pausing {
    held: &'static str,
    paused: Mutex<Sender<()>>,
    resume: Mutex<Receiver<()>>,
}

impl Reporter for Pausing {
    fn report(&self, event: Event) {
        if let Event::Unpacking { package } = event
            && package.to_string_lossy().contains(self.held)
        {
            if let Ok(paused) = self.paused.lock() {
                let _ = paused.send(());
            }
            if let Ok(resume) = self.resume.lock() {
                let _ = resume.recv_timeout(Duration::from_secs(30));
            }
        }
    }
}

/// What the child found, as its exit status.
const FINE: i32 = 0;
const CHANGED_ACROSS_THE_FORK: i32 = 10;

/// How long the child lives on after its checks at most, holding its copy of the lock's
/// file: until the parent has made its next change, which must not wait for it.
const CHILD_LIFE: Duration = Duration::from_secs(60);

/// What the parent's next change may take, far below what waiting for the child takes.
const CHANGE_BOUND: Duration = Duration::from_secs(15);

#[test]
fn a_fork_during_a_change_neither_lets_the_child_wait_nor_holds_the_parents_lock() {
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (paused_tx, paused_rx) = channel();
    let (resume_tx, resume_rx) = channel();
    let reporter = Pausing {
        held: "voicemail",
        paused: Mutex::new(paused_tx),
        resume: Mutex::new(resume_rx),
    };
    let host = Arc::new(
        Host::open(root.path())
            .unwrap_or_else(|e| panic!("{e}"))
            .with_reporter(Box::new(reporter)),
    );
    host.install(&[package("core")], Options::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let installing = {
        let host = Arc::clone(&host);
        std::thread::spawn(move || host.install(&[package("voicemail")], Options::default()))
    };
    paused_rx
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("the install never began: {e}"));

    // The child lives until the parent closes its end of this pipe.
    let mut pipe = [0; 2];
    // SAFETY: `pipe` has room for the two descriptors.
    #[allow(unsafe_code)]
    let piped = unsafe { libc::pipe(pipe.as_mut_ptr()) };
    assert_eq!(piped, 0, "pipe failed");
    // SAFETY: the child runs only this test's code, then leaves with `_exit`, running no
    // destructor and no test harness; this binary runs no other test.
    #[allow(unsafe_code)]
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let status = match host.uninstall("core", true) {
            Err(e) if e.to_string().contains("fork") => FINE,
            other => {
                eprintln!("child: a change across the fork: {other:?}");
                CHANGED_ACROSS_THE_FORK
            }
        };
        let mut told = libc::pollfd {
            fd: pipe[0],
            events: libc::POLLIN,
            revents: 0,
        };
        let life = i32::try_from(CHILD_LIFE.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: the child's own copies of the pipe's descriptors; then ends the child at
        // once, as a forked child must.
        #[allow(unsafe_code)]
        unsafe {
            libc::close(pipe[1]);
            libc::poll(&mut told, 1, life);
            libc::_exit(status)
        };
    }
    // SAFETY: the parent's copy of the pipe's reading end, not used by the parent.
    #[allow(unsafe_code)]
    unsafe {
        libc::close(pipe[0])
    };
    resume_tx
        .send(())
        .unwrap_or_else(|e| panic!("the install ended early: {e}"));
    let installed = installing
        .join()
        .unwrap_or_else(|_| panic!("install panicked"));
    assert!(installed.is_ok(), "{installed:?}");
    // The parent's next change takes the lock its last one let go of, child or no child.
    let started = Instant::now();
    host.uninstall("voicemail", false)
        .unwrap_or_else(|e| panic!("{e}"));
    let took = started.elapsed();
    // SAFETY: the parent's writing end, closed once: the child leaves.
    #[allow(unsafe_code)]
    unsafe {
        libc::close(pipe[1])
    };
    assert!(
        took < CHANGE_BOUND,
        "the parent's change waited {took:?} for the child"
    );
    let mut status = 0;
    // SAFETY: waits for the child just made.
    #[allow(unsafe_code)]
    let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(waited, pid);
    assert!(libc::WIFEXITED(status), "child did not exit: {status}");
    assert_eq!(
        libc::WEXITSTATUS(status),
        FINE,
        "see the child's message above"
    );
}
