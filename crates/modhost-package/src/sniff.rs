//! Telling what bytes are by their first few: the formats a package is not, named so a
//! refusal can say what was found, and the check of a tar header's checksum.

use std::cell::Cell;
use std::io::{self, Read};
use std::rc::Rc;

use crate::fault::Fault;

/// The size of a tar block, and of a tar header.
pub(crate) const BLOCK: usize = 512;

/// Compressed formats and archives a package might be by mistake, by their magic bytes:
/// what to call each.
const MAGIC: [(&[u8], &str); 6] = [
    (b"\x1f\x8b", "a gzip stream"),
    (b"PK\x03\x04", "a zip archive"),
    (b"BZh", "a bzip2-compressed file"),
    (b"\xfd7zXZ\0", "an xz-compressed file"),
    (b"\x28\xb5\x2f\xfd", "a zstd-compressed file"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
];

/// What `bytes` start with, when it is one of the [`MAGIC`] formats.
pub(crate) fn magic(bytes: &[u8]) -> Option<&'static str> {
    MAGIC
        .iter()
        .find(|(magic, _)| bytes.starts_with(magic))
        .map(|(_, what)| *what)
}

/// Whether `block` is a tar header: its checksum field matches the sum of its bytes (the
/// field itself counted as spaces), as every tar format from v7 on writes it.
pub(crate) fn is_tar_header(block: &[u8]) -> bool {
    let Some(field) = block.get(148..156) else {
        return false;
    };
    let digits: String = field
        .iter()
        .map(|&b| b as char)
        .skip_while(|c| *c == ' ')
        .take_while(char::is_ascii_digit)
        .collect();
    let Ok(stored) = u64::from_str_radix(&digits, 8) else {
        return false;
    };
    let header = &block[..BLOCK.min(block.len())];
    let unsigned: u64 = header
        .iter()
        .enumerate()
        .map(|(at, &b)| {
            if (148..156).contains(&at) {
                32
            } else {
                u64::from(b)
            }
        })
        .sum();
    let signed: i64 = header
        .iter()
        .enumerate()
        .map(|(at, &b)| {
            if (148..156).contains(&at) {
                32
            } else {
                i64::from(b as i8)
            }
        })
        .sum();
    header.len() == BLOCK && (stored == unsigned || i64::try_from(stored) == Ok(signed))
}

/// A decompressed stream whose first block must be a tar header (or the zero block of an
/// empty tar), else reading fails with [`Fault::NotTar`] naming what it holds instead.
pub(crate) struct TarStart<R> {
    inner: R,
    head: Vec<u8>,
    checked: bool,
    /// Set once `inner` has ended: a tar read failing after that was cut short.
    ended: Rc<Cell<bool>>,
}

impl<R> TarStart<R> {
    /// `inner`, its first block to be checked as it is read; `ended` is set when it ends.
    pub(crate) fn new(inner: R, ended: Rc<Cell<bool>>) -> Self {
        TarStart {
            inner,
            head: Vec::with_capacity(BLOCK),
            checked: false,
            ended,
        }
    }
}

impl<R: Read> Read for TarStart<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.ended.set(true);
        }
        if !self.checked {
            let wanted = (BLOCK - self.head.len()).min(n);
            self.head.extend_from_slice(&buf[..wanted]);
            if self.head.len() == BLOCK || n == 0 {
                self.checked = true;
                let zeros = self.head.iter().all(|&b| b == 0);
                if !(zeros || is_tar_header(&self.head)) {
                    let found = match magic(&self.head) {
                        Some("a gzip stream") => {
                            Some("another gzip stream: it was compressed twice")
                        }
                        Some("a zip archive") => {
                            Some("a zip archive: install the .zip itself, not gzipped")
                        }
                        other => other,
                    };
                    return Err(Fault::NotTar { found }.into_io());
                }
            }
        }
        Ok(n)
    }
}
