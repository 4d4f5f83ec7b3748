//! The limits a package is held to, and the budget that enforces the size and
//! compression-ratio limits on every byte it unpacks to, over the whole package and over
//! every stretch of it.

use std::borrow::BorrowMut;
use std::cell::Cell;
use std::io::{self, Read};
use std::rc::Rc;

/// Limits on what a package may hold.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The most entries (files and directories).
    pub max_entries: usize,
    /// The most bytes unpacked, in total: for a gzip tar, the whole decompressed stream
    /// (headers and everything else); for a zip, the entries' contents.
    pub max_total_size: u64,
    /// The longest entry path, in bytes.
    pub max_path_len: usize,
    /// The highest ratio of unpacked bytes to compressed bytes.
    pub max_ratio: u64,
}

impl Limits {
    /// The most bytes a package of `compressed` bytes may unpack to: the size limit, and
    /// the ratio limit times its length (never less than the grace allowance small
    /// packages get).
    pub fn most_unpacked(&self, compressed: u64) -> u64 {
        self.max_total_size
            .min(compressed.saturating_mul(self.max_ratio).max(RATIO_GRACE))
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_entries: 10_000,
            max_total_size: 256 * 1024 * 1024,
            max_path_len: 255,
            max_ratio: 200,
        }
    }
}

/// Output allowed before the compression ratio is enforced: small files compress well.
/// It is also the stretch over which the ratio is checked again and again (a gzip
/// stream's every mebibyte, a zip entry's content), so a bomb writes at most about this
/// much past what honest bytes before it unpacked to.
pub(crate) const RATIO_GRACE: u64 = 1024 * 1024;

/// The sizes a package's entries declare, added up as they come: refused once they pass
/// what the package may unpack to, before a byte of them is read. Unpacking and reading
/// only the manifest keep one alike.
pub(crate) struct Declared {
    total: u64,
    most: u64,
    length: u64,
    limits: Limits,
}

impl Declared {
    /// The tally for a package of `length` bytes under `limits`.
    pub(crate) fn new(limits: &Limits, length: u64) -> Self {
        Declared {
            total: 0,
            most: limits.most_unpacked(length),
            length,
            limits: *limits,
        }
    }

    /// Adds entry `shown`'s declared `size`; why not, in words, once the total passes.
    pub(crate) fn add(&mut self, size: u64, shown: &str) -> Result<(), String> {
        self.total = self.total.saturating_add(size);
        if self.total > self.most {
            let exceeded = Exceeded {
                allowed: self.most,
                max_total_size: self.limits.max_total_size,
                max_ratio: self.limits.max_ratio,
                stretch: self.most,
                from: self.length,
                by_size: self.most >= self.limits.max_total_size,
            };
            return Err(exceeded.explain(&format!("`{shown}`")));
        }
        Ok(())
    }
}

/// The decompressed bytes have grown past what the limits allow. Its `Display` is the
/// package-wide figure in bytes; [`Exceeded::explain`] says it in words, naming the entry.
#[derive(Debug, thiserror::Error)]
#[error(
    "unpacks to more than {allowed} bytes (size limit {max_total_size} bytes, compression-ratio limit {max_ratio}:1)"
)]
pub(crate) struct Exceeded {
    pub(crate) allowed: u64,
    pub(crate) max_total_size: u64,
    pub(crate) max_ratio: u64,
    /// What the stretch that passed its allowance may unpack to…
    pub(crate) stretch: u64,
    /// …and the compressed bytes it came from.
    pub(crate) from: u64,
    /// Whether the size limit, not the ratio, was passed.
    pub(crate) by_size: bool,
}

impl Exceeded {
    /// The refusal in words: `what` (an entry, quoted, or "the package") would unpack
    /// past what the limits allow, with the numbers plainly, then the figure in bytes.
    pub(crate) fn explain(&self, what: &str) -> String {
        let rule = format!(
            "packages may unpack to at most {}× their size and {}",
            self.max_ratio,
            amount(self.max_total_size)
        );
        let main = if self.by_size {
            format!(
                "{what} would take the package past {}, the most a package may unpack to",
                amount(self.max_total_size)
            )
        } else if self.stretch <= self.from.saturating_mul(self.max_ratio) {
            format!(
                "{what} would unpack past {}, {} times the {} it takes in the archive",
                amount(self.stretch),
                self.max_ratio,
                amount(self.from)
            )
        } else {
            format!(
                "{what} would unpack past {} from only {} in the archive",
                amount(self.stretch),
                amount(self.from)
            )
        };
        format!("{main}; {rule} [{self}]")
    }
}

/// `bytes` for a reader: `512 bytes`, `5 KiB`, `1.5 MiB`.
pub(crate) fn amount(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} bytes");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    let unit = UNITS[unit];
    if (value - value.round()).abs() < 0.05 {
        format!("{} {unit}", value.round())
    } else {
        format!("{value:.1} {unit}")
    }
}

/// What a package may unpack to: at most the size limit, and at most the ratio limit
/// times the compressed bytes so far (past a grace allowance), so a bomb is refused
/// after about a megabyte, not after filling the size budget. The ratio holds over each
/// stretch too (see [`Window`]): compressed bytes that unpacked to little earlier leave
/// no credit for a run of zeros later.
pub(crate) struct Budget {
    limits: Limits,
    /// The compressed bytes the decoder consumed (gzip) or declared by the entries so far
    /// (zip).
    pub(crate) compressed: Rc<Cell<u64>>,
    /// The bytes unpacked so far.
    pub(crate) produced: u64,
    /// Where the stretch being checked began.
    window: Window,
    /// Whether the stretch moves on by itself every [`RATIO_GRACE`] bytes (a gzip
    /// stream); a zip's stretch is the entry being read, started by [`Budget::admit`].
    rolling: bool,
}

/// The start of the stretch of a package over which the ratio is checked on its own: the
/// bytes produced and compressed bytes counted when it began. Within a stretch the ratio
/// applies past [`RATIO_GRACE`] bytes; a gzip stream's stretch moves on once it passes
/// that many, so every mebibyte it unpacks to needs its own compressed bytes.
#[derive(Debug, Clone, Copy, Default)]
struct Window {
    produced: u64,
    compressed: u64,
}

impl Budget {
    /// A budget for a package held to `limits`, nothing counted yet.
    pub(crate) fn new(limits: &Limits) -> Self {
        Budget {
            limits: *limits,
            compressed: Rc::new(Cell::new(0)),
            produced: 0,
            window: Window::default(),
            rolling: true,
        }
    }

    /// What `compressed` bytes may unpack to under the ratio limit (at least the grace
    /// allowance).
    fn ratio_allows(&self, compressed: u64) -> u64 {
        compressed
            .saturating_mul(self.limits.max_ratio)
            .max(RATIO_GRACE)
    }

    /// Refuses `produced` bytes when the limits do not allow them, over the whole package
    /// or over the current stretch.
    fn check(&self, produced: u64) -> Result<(), Exceeded> {
        let compressed = self.compressed.get();
        let allowed = self
            .limits
            .max_total_size
            .min(self.ratio_allows(compressed));
        let stretch = produced.saturating_sub(self.window.produced);
        let stretch_allowed = self.ratio_allows(compressed.saturating_sub(self.window.compressed));
        if produced > allowed {
            let ratio_allows = self.ratio_allows(compressed);
            return Err(Exceeded {
                allowed,
                max_total_size: self.limits.max_total_size,
                max_ratio: self.limits.max_ratio,
                stretch: allowed,
                from: compressed,
                by_size: self.limits.max_total_size < ratio_allows,
            });
        }
        if stretch > stretch_allowed {
            // Reported as the package's allowance: what it may unpack to, given what it
            // unpacked to before this stretch.
            return Err(Exceeded {
                allowed: self.window.produced.saturating_add(stretch_allowed),
                max_total_size: self.limits.max_total_size,
                max_ratio: self.limits.max_ratio,
                stretch: stretch_allowed,
                from: compressed.saturating_sub(self.window.compressed),
                by_size: false,
            });
        }
        Ok(())
    }

    /// Admits, before it is read, a zip entry that declares `compressed` and `size` bytes,
    /// in a package of `length` bytes. Entries may share compressed bytes (a bomb made of
    /// overlapping entries): the file's length bounds what counts as compressed. The
    /// entry is a stretch of its own: its size must fit its own compressed bytes.
    pub(crate) fn admit(
        &mut self,
        compressed: u64,
        size: u64,
        length: u64,
    ) -> Result<(), Exceeded> {
        self.rolling = false;
        self.window = Window {
            produced: self.produced,
            compressed: self.compressed.get(),
        };
        let compressed = self.compressed.get().saturating_add(compressed);
        self.compressed.set(compressed.min(length));
        self.check(self.produced.saturating_add(size))
    }

    /// Counts `n` more bytes produced.
    pub(crate) fn charge(&mut self, n: u64) -> Result<(), Exceeded> {
        self.produced = self.produced.saturating_add(n);
        self.check(self.produced)?;
        if self.rolling && self.produced - self.window.produced > RATIO_GRACE {
            self.window = Window {
                produced: self.produced,
                compressed: self.compressed.get(),
            };
        }
        Ok(())
    }
}

/// A reader whose output is charged to a [`Budget`], failing with [`Exceeded`] once past
/// it. A gzip tar's whole decoder is wrapped, leaving nothing uncounted: the tar crate
/// reads long names and PAX records into memory whole, and skips the content of entries
/// it is not asked for by reading it. A zip's entries are wrapped one by one, sharing the
/// package's budget.
pub(crate) struct Bounded<R, B> {
    /// The reader whose output is counted.
    pub(crate) inner: R,
    /// The budget: owned for a gzip stream, borrowed for each zip entry.
    pub(crate) budget: B,
}

impl<R: Read, B: BorrowMut<Budget>> Read for Bounded<R, B> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.budget
            .borrow_mut()
            .charge(n as u64)
            .map_err(io::Error::other)?;
        Ok(n)
    }
}
