//! A package's gzip stream, read as GNU tar reads it: every member, each checked against
//! its CRC32 and length, and nothing but gzip members (and zeros padding the file) to the
//! end of the file.

use std::cell::Cell;
use std::io::{self, BufRead, Read};
use std::rc::Rc;

use flate2::bufread::GzDecoder;

use crate::fault::Fault;

/// Counts the compressed bytes the decoder has consumed: exactly those it inflated, not
/// those read ahead into the buffer, so a stretch's compressed bytes are its own.
pub(crate) struct Counting {
    pub(crate) inner: io::BufReader<std::fs::File>,
    pub(crate) consumed: Rc<Cell<u64>>,
}

impl Read for Counting {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.consumed.set(self.consumed.get() + n as u64);
        Ok(n)
    }
}

impl BufRead for Counting {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amount: usize) {
        self.consumed.set(self.consumed.get() + amount as u64);
        self.inner.consume(amount);
    }
}

/// The decompressed bytes of every member of a gzip stream, one after the other (RFC 1952
/// allows several; `gzip -d` and GNU tar read them all). A member whose CRC32 or length
/// does not match, a stream cut short and bytes after the last member (other than zeros
/// padding the file) are [`Fault`]s.
pub(crate) struct Members {
    /// The member being read; `None` once the file ended after a whole member.
    decoder: Option<GzDecoder<Counting>>,
    /// Whether the member being read is not the first.
    later: bool,
}

impl Members {
    /// The members of the gzip stream `file` holds, from its first byte.
    pub(crate) fn new(file: Counting) -> Self {
        Members {
            decoder: Some(GzDecoder::new(file)),
            later: false,
        }
    }

    /// The fault a decoding error stands for; other I/O errors pass as they are.
    fn fault(&self, error: io::Error) -> io::Error {
        let header_read = self.decoder.as_ref().is_some_and(|d| d.header().is_some());
        let fault = match error.kind() {
            io::ErrorKind::UnexpectedEof => Fault::Truncated,
            io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData => {
                if self.later && !header_read {
                    Fault::AfterGzip
                } else if error.to_string().contains("checksum") {
                    Fault::Checksum
                } else {
                    Fault::Corrupt
                }
            }
            _ => return error,
        };
        fault.into_io()
    }
}

impl Read for Members {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let Some(decoder) = self.decoder.as_mut() else {
                return Ok(0);
            };
            match decoder.read(buf) {
                Ok(0) => {}
                Ok(n) => return Ok(n),
                Err(error) => return Err(self.fault(error)),
            }
            // The member ended, its CRC32 and length checked: the file ends here, or
            // another member starts.
            let Some(decoder) = self.decoder.take() else {
                return Ok(0);
            };
            let mut file = decoder.into_inner();
            let rest = file.fill_buf()?;
            if rest.is_empty() {
                return Ok(0);
            }
            if rest[0] == 0 {
                // Zeros to the end pad the file to a block, as tape-era tools and some
                // uploads do; gzip, GNU tar and bsdtar read past them.
                return zeros_to_the_end(&mut file);
            }
            if rest[0] != 0x1f || rest.get(1).is_some_and(|&b| b != 0x8b) {
                return Err(Fault::AfterGzip.into_io());
            }
            self.decoder = Some(GzDecoder::new(file));
            self.later = true;
        }
    }
}

/// Reads `file` to its end, which must hold nothing but zeros.
fn zeros_to_the_end(file: &mut Counting) -> io::Result<usize> {
    loop {
        let rest = file.fill_buf()?;
        if rest.is_empty() {
            return Ok(0);
        }
        if rest.iter().any(|&b| b != 0) {
            return Err(Fault::AfterGzip.into_io());
        }
        let read = rest.len();
        file.consume(read);
    }
}
