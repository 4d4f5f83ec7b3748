//! Module packages: a gzip tar or a zip holding `module.xml` and the module's component,
//! either at the archive's root or in one top-level directory named after the rawname.
//!
//! [`unpack`] extracts a package into a fresh staging directory and checks it before the
//! host touches anything else: only regular files and directories (a PAX global header,
//! such as `git archive` writes, is metadata and skipped), relative paths, at
//! most one top-level directory (named after the rawname), bounded sizes, no duplicates,
//! modes never taken from the archive nor left to the umask (files 0644, directories
//! 0755). The staging directory is opened with cap-std, so even a path that slipped
//! past the checks could not land outside it. The format is told by the file's first
//! bytes, never by its name, and both formats' entries go through the same checks.
//!
//! Every byte of a gzip tar's decompressed stream counts against the size and
//! compression-ratio limits, [`read_manifest`]'s reading included: headers, GNU long
//! names, PAX records and the content of entries that are skipped, not only the files
//! written. A zip's entries count by their content: each is refused before it is read
//! when its declared size would pass the limits, and stopped while it is read should it
//! produce more.
//!
//! The ratio holds over the whole package and over every stretch of it too: every
//! mebibyte a gzip stream unpacks to must come from its share of compressed bytes, and
//! every zip entry from its own. Incompressible bytes early on (a real component) earn no
//! credit that a run of zeros could spend later, so a bomb is refused after a mebibyte or
//! two of it, wherever it sits in the package. An entry whose declared size is more than
//! the whole package could ever unpack to ([`Limits::most_unpacked`]) is refused before a
//! byte of it is read.
//!
//! A gzip tar is read as GNU tar reads it: every gzip member (RFC 1952 allows several),
//! each checked against its CRC32 and length, the stream drained past the tar's end (where
//! only zero padding may follow) and nothing after it; an entry GNU tar would read
//! otherwise (a PAX sparse header, `GNU.sparse.*`) is refused. Names that differ only in
//! case, or make one path both a file and a directory, are refused; entry names are
//! escaped wherever a message quotes them.
//!
//! [`pack`](fn@pack) writes a gzip tar reproducibly (fixed order, times, owners and modes),
//! never following a link and packing only a WebAssembly component.
//!
//! ```no_run
//! use std::path::Path;
//!
//! use modhost_package::{Limits, pack, read_manifest, unpack};
//!
//! # fn main() -> Result<(), modhost_package::Error> {
//! let package = Path::new("demo.tgz");
//! pack(Path::new("demo/module.xml"), Path::new("demo/module.wasm"), package)?;
//! let limits = Limits::default();
//! let manifest = read_manifest(package, &limits)?;
//! // `staging` must exist, empty: the module lands in `staging/<rawname>`.
//! let unpacked = unpack(package, Path::new("staging"), &limits)?;
//! assert_eq!(unpacked.dir, Path::new("staging").join(&manifest.rawname));
//! # Ok(())
//! # }
//! ```

mod budget;
mod entries;
mod error;
mod escape;
mod fault;
mod format;
mod gzip;
mod headers;
mod manifest;
mod names;
mod pack;
mod sniff;
mod staging;
mod tar;
mod zip;
mod zip_layout;

pub use budget::Limits;
pub use error::Error;
pub use format::{
    Format, archive_stem, format, module_dirs, other_archives, other_than_a_file, package_files,
};
pub use manifest::read_manifest;
pub use pack::{pack, read_component};
pub use staging::{Unpacked, unpack, unpack_to_read};

#[cfg(test)]
mod tests;
