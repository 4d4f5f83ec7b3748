//! A module's stdout and stderr, which authors print to (`print()` in Python, `println!`
//! and `eprintln!` in Rust): kept, bounded, never an error (printing must not fail a
//! module, and Rust's `eprintln!` panics when its write fails). Stdout keeps the start of
//! what a call printed and goes to the log a line as soon as the line ends, so that it
//! stands among the module's log records in the order the module wrote them; stderr keeps
//! the end, where a traceback or a panic message is, for trap reports (and the log at
//! debug level). Past the bound, output is dropped and counted.

use std::sync::{Arc, Mutex, PoisonError};

use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

/// How much of one call's stdout, and of its stderr, is kept; the rest is dropped and
/// counted.
const KEPT: usize = 64 * 1024;

/// What a call printed to one stream.
#[derive(Default)]
struct Printed {
    bytes: Vec<u8>,
    dropped: usize,
    /// How much of `bytes` went to the log already: the lines ended so far.
    logged: usize,
    /// How many lines went to the log, and how many more were dropped past the limit.
    lines: usize,
    lines_dropped: usize,
}

/// Which part of a stream's output is kept past [`KEPT`] bytes.
#[derive(Clone, Copy, Default)]
enum Keep {
    /// The first bytes: stdout, logged as the author printed it.
    #[default]
    Head,
    /// The last bytes: stderr, whose end explains a trap.
    Tail,
}

/// One stream of a sandbox, shared with the streams WASI opens on it.
#[derive(Clone, Default)]
pub(crate) struct Captured {
    printed: Arc<Mutex<Printed>>,
    keep: Keep,
    /// The module whose lines go to the log as they end; `None` for a stream that is only
    /// read (stderr).
    module: Option<Arc<str>>,
    /// The most lines of one call that go to the log, as many as the records a call may
    /// log: printing cannot flood the log past the bound logging has.
    max_lines: usize,
}

impl Captured {
    /// Module `rawname`'s stdout: its first bytes are kept, each line logged as it ends,
    /// up to `max_lines` a call.
    pub(crate) fn stdout(rawname: &str, max_lines: usize) -> Self {
        Captured {
            module: Some(rawname.into()),
            max_lines,
            ..Captured::default()
        }
    }

    /// A stderr: its last bytes are kept.
    pub(crate) fn stderr() -> Self {
        Captured {
            keep: Keep::Tail,
            ..Captured::default()
        }
    }

    fn printed(&self) -> std::sync::MutexGuard<'_, Printed> {
        self.printed.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// What is kept of what was printed, and how many bytes were dropped.
    pub(crate) fn contents(&self) -> (Vec<u8>, usize) {
        let printed = self.printed();
        let start = printed.bytes.len().saturating_sub(KEPT);
        let dropped = printed.dropped + start;
        (printed.bytes[start..].to_vec(), dropped)
    }

    /// Whether nothing was printed.
    pub(crate) fn is_empty(&self) -> bool {
        let printed = self.printed();
        printed.bytes.is_empty() && printed.dropped == 0
    }

    /// Logs what the call printed and no ended line has logged yet (a last line without
    /// its newline), under the module's name, and forgets it.
    pub(crate) fn log(&self, rawname: &str) {
        let Printed {
            bytes,
            dropped,
            logged,
            mut lines,
            mut lines_dropped,
        } = std::mem::take(&mut *self.printed());
        // A last line cut at the limit goes on in what was dropped, where its end was
        // counted.
        let rest = match dropped {
            0 => &bytes[logged.min(bytes.len())..],
            _ => &[][..],
        };
        let text = String::from_utf8_lossy(rest);
        for line in text.lines() {
            if lines < self.max_lines {
                log_line(rawname, line);
                lines += 1;
            } else {
                lines_dropped += 1;
            }
        }
        if lines_dropped > 0 {
            // Either limit may have stopped them: the lines, or the bytes kept.
            tracing::warn!(target: "modhost::module", module = %rawname, "{lines_dropped} printed lines were not logged (a call logs at most {} lines and {KEPT} bytes of what it prints)", self.max_lines);
        }
        if dropped > 0 {
            tracing::warn!(target: "modhost::module", module = %rawname, "{dropped} bytes printed past the {KEPT}-byte limit of a call were dropped");
        }
    }

    fn keep(&self, bytes: &[u8]) {
        let mut printed = self.printed();
        match self.keep {
            Keep::Head => {
                let room = KEPT.saturating_sub(printed.bytes.len());
                let kept = bytes.len().min(room);
                printed.bytes.extend_from_slice(&bytes[..kept]);
                printed.dropped += bytes.len() - kept;
                // The lines of what is dropped are counted too: one count of the lines
                // not logged, wherever they were lost.
                printed.lines_dropped += bytes[kept..].iter().filter(|b| **b == b'\n').count();
                let Some(module) = &self.module else {
                    return;
                };
                while let Some(end) = printed.bytes[printed.logged..]
                    .iter()
                    .position(|b| *b == b'\n')
                {
                    let line = &printed.bytes[printed.logged..printed.logged + end];
                    if printed.lines < self.max_lines {
                        log_line(module, String::from_utf8_lossy(line).trim_end_matches('\r'));
                        printed.lines += 1;
                    } else {
                        printed.lines_dropped += 1;
                    }
                    printed.logged += end + 1;
                }
            }
            Keep::Tail => {
                let skipped = bytes.len().saturating_sub(KEPT);
                printed.bytes.extend_from_slice(&bytes[skipped..]);
                printed.dropped += skipped;
                // Trimmed once it holds twice the bound: a copy per KEPT bytes written.
                if printed.bytes.len() > 2 * KEPT {
                    let excess = printed.bytes.len() - KEPT;
                    printed.bytes.drain(..excess);
                    printed.dropped += excess;
                }
            }
        }
    }
}

/// One line module `rawname` printed, as a log record under its name.
fn log_line(rawname: &str, line: &str) {
    tracing::info!(target: "modhost::module", module = %rawname, stdout = true, "{line}");
}

impl IsTerminal for Captured {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for Captured {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
}

impl tokio::io::AsyncWrite for Captured {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.keep(buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

#[wasmtime_wasi::async_trait]
impl OutputStream for Captured {
    fn write(&mut self, bytes: bytes::Bytes) -> Result<(), StreamError> {
        self.keep(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(KEPT)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for Captured {
    async fn ready(&mut self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stderr_keeps_its_end_and_stdout_its_start_counting_the_rest() {
        let (stderr, stdout) = (Captured::stderr(), Captured::stdout("m", 1000));
        for i in 0..300u32 {
            let line = format!("{i:04} {}\n", "x".repeat(1018));
            stderr.keep(line.as_bytes());
            stdout.keep(line.as_bytes());
        }
        let (kept, dropped) = stderr.contents();
        assert_eq!((kept.len(), dropped), (KEPT, 300 * 1024 - KEPT));
        assert!(kept.ends_with(format!("0299 {}\n", "x".repeat(1018)).as_bytes()));
        let (kept, dropped) = stdout.contents();
        assert_eq!((kept.len(), dropped), (KEPT, 300 * 1024 - KEPT));
        assert!(kept.starts_with(b"0000 "));
        assert!(!stderr.is_empty() && Captured::stderr().is_empty());
    }

    #[test]
    fn printed_lines_go_to_the_log_up_to_the_records_a_call_may_log() {
        let stdout = Captured::stdout("m", 3);
        stdout.keep(b"a\nb\nc\nd\ne\nf");
        let (lines, dropped) = {
            let printed = stdout.printed();
            (printed.lines, printed.lines_dropped)
        };
        assert_eq!((lines, dropped), (3, 2));
        // The call's end logs what is left (`f`), past the limit too; the next call starts
        // afresh.
        stdout.log("m");
        stdout.keep(b"g\n");
        assert_eq!(stdout.printed().lines, 1);
    }
}
