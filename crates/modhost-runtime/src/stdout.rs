//! A module's stdout, which authors print to (`print()` in Python, `println!` in Rust):
//! kept, bounded, and written to the log under the module's name after each call, instead
//! of being thrown away. Past the bound, output is dropped (and counted), never an error:
//! printing must not fail a module.

use std::sync::{Arc, Mutex, PoisonError};

use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

/// How much of one call's stdout is logged; the rest is dropped and counted.
const KEPT: usize = 64 * 1024;

/// What a call printed.
#[derive(Default)]
struct Printed {
    bytes: Vec<u8>,
    dropped: usize,
}

/// The stdout of one sandbox, shared with the streams WASI opens on it.
#[derive(Clone, Default)]
pub(crate) struct Stdout(Arc<Mutex<Printed>>);

impl Stdout {
    fn printed(&self) -> std::sync::MutexGuard<'_, Printed> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Logs what the call printed, a record a line, under the module's name, and forgets it.
    pub(crate) fn log(&self, rawname: &str) {
        let Printed { bytes, dropped } = std::mem::take(&mut *self.printed());
        let text = String::from_utf8_lossy(&bytes);
        for line in text.lines() {
            tracing::info!(target: "modhost::module", module = %rawname, stdout = true, "{line}");
        }
        if dropped > 0 {
            tracing::warn!(target: "modhost::module", module = %rawname, "{dropped} bytes printed past the {KEPT}-byte limit of a call were dropped");
        }
    }

    fn keep(&self, bytes: &[u8]) {
        let mut printed = self.printed();
        let room = KEPT.saturating_sub(printed.bytes.len());
        let kept = bytes.len().min(room);
        printed.bytes.extend_from_slice(&bytes[..kept]);
        printed.dropped += bytes.len() - kept;
    }
}

impl IsTerminal for Stdout {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for Stdout {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
}

impl tokio::io::AsyncWrite for Stdout {
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
impl OutputStream for Stdout {
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
impl Pollable for Stdout {
    async fn ready(&mut self) {}
}
