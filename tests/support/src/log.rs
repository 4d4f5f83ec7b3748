//! A writer that keeps what a test's log subscriber writes, for the test to read.

use std::io::Write;
use std::sync::{Arc, Mutex};

/// Everything written to it, by every clone, from every thread.
#[derive(Clone, Default)]
pub struct Sink(Arc<Mutex<Vec<u8>>>);

impl Sink {
    /// What was written so far, as text.
    pub fn text(&self) -> String {
        let bytes = self.0.lock().map(|log| log.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut log) = self.0.lock() {
            log.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
