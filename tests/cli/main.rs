//! End-to-end tests of the `modhost` binary against the real example modules.

mod archives;
mod concurrency;
mod config;
mod contract;
mod crash;
mod damage;
mod disk;
mod downloads;
mod escapes;
mod freshness;
mod lifecycle;
mod links;
mod manifest;
mod messages;
mod new;
mod offers;
mod quota;
mod runaway;
mod sandbox;
mod transactions;
mod updates;

use modhost_test_support::Root;

/// A fresh root driven by this build's `modhost` binary.
fn root() -> Root {
    Root::new(env!("CARGO_BIN_EXE_modhost"))
}

/// What `modhost ARGS` did when sent SIGINT once its stderr said `marker`: its exit code,
/// what it said after, and how long it took to end after the signal.
struct Interrupted {
    code: Option<i32>,
    said: Vec<String>,
    took: std::time::Duration,
}

impl Interrupted {
    /// Fails the test unless the command stopped as an interrupted change does: exit 130
    /// within `within` of the signal, saying that it committed nothing.
    fn assert_stopped(&self, within: std::time::Duration) {
        assert_eq!(self.code, Some(130), "{:?}", self.said);
        assert!(self.took < within, "stopped only after {:?}", self.took);
        assert!(
            self.said
                .iter()
                .any(|line| line.contains("interrupted before the change was committed")),
            "{:?}",
            self.said
        );
    }
}

/// Runs `modhost ARGS` on `root`, sends it SIGINT once a line of its stderr contains
/// `marker` (failing the test if none does), and waits for it to end.
fn interrupted(root: &Root, args: &[&str], marker: &str) -> Interrupted {
    interrupted_by(root, args, marker, "INT")
}

/// [`interrupted`], by `signal` (as `kill` names it: `INT`, `TERM`, `HUP`, `KILL`).
fn interrupted_by(root: &Root, args: &[&str], marker: &str, signal: &str) -> Interrupted {
    use std::io::BufRead;
    let spawned = root
        .command(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let Ok(mut child) = spawned else {
        panic!("{spawned:?}")
    };
    let Some(stderr) = child.stderr.take() else {
        panic!("no stderr")
    };
    let mut lines = std::io::BufReader::new(stderr)
        .lines()
        .map_while(Result::ok);
    let seen = lines.by_ref().find(|line| line.contains(marker));
    assert!(
        seen.is_some(),
        "`modhost {}` never said `{marker}`",
        args.join(" ")
    );
    let signalled = std::time::Instant::now();
    let sent = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status();
    assert!(sent.is_ok_and(|s| s.success()));
    let said: Vec<String> = lines.collect();
    let code = child.wait().ok().and_then(|s| s.code());
    Interrupted {
        code,
        said,
        took: signalled.elapsed(),
    }
}
