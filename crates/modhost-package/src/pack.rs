//! Packing: a gzip tar written reproducibly, so the same module always packs to the same
//! bytes.

use std::io::{self, Read, Write};
use std::path::Path;

use flate2::Compression;
use flate2::write::GzEncoder;
use modhost_manifest::Manifest;

use crate::Limits;
use crate::error::{Error, refused};
use crate::escape::shown_str;

/// The first bytes of every WebAssembly module and component.
const WASM_MAGIC: &[u8] = b"\0asm";

/// Refuses `path` (`what` it is, for the message) when it is a symbolic link: packing
/// never follows one, so a link cannot put another file in a package.
fn refuse_link(path: &Path, what: &str) -> Result<(), Error> {
    match fs_err::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => Err(refused(
            path,
            format!(
                "{what} `{}` is a symbolic link, and packing never follows links; \
                 give the path of the file itself",
                shown_str(&path.display().to_string())
            ),
        )),
        _ => Ok(()),
    }
}

/// Reads `path` (`what` it is, for messages), refusing it unless it is a regular file,
/// not a link, and of at most `max` bytes (checked before it is read, and while it is);
/// the package being written is `out`.
fn read_regular(path: &Path, out: &Path, what: &str, max: u64) -> Result<Vec<u8>, Error> {
    let io_err = |source| Error::Io {
        package: out.to_owned(),
        context: format!("cannot read {what}"),
        source,
    };
    let shown = shown_str(&path.display().to_string());
    let before = match fs_err::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(refused(
                out,
                format!("{what} `{shown}` does not exist{}", missing_hint(what)),
            ));
        }
        other => other.map_err(io_err)?,
    };
    if before.file_type().is_symlink() {
        return Err(refused(
            out,
            format!(
                "{what} `{shown}` is a symbolic link, and packing never follows links; \
                 copy the file itself into the module's directory"
            ),
        ));
    }
    if !before.is_file() {
        return Err(refused(
            out,
            format!("{what} `{shown}` is not a regular file; only regular files are packed"),
        ));
    }
    let file = fs_err::File::open(path).map_err(io_err)?;
    // What was opened must be what was looked at: a link swapped in between is refused.
    let opened = file.metadata().map_err(io_err)?;
    if !same_file(&before, &opened) {
        return Err(refused(
            out,
            format!("{what} `{shown}` changed while it was being packed; pack again"),
        ));
    }
    let too_large = |size: u64| {
        refused(
            out,
            format!(
                "{what} `{shown}` is {}, more than the {} a package may unpack to",
                crate::budget::amount(size),
                crate::budget::amount(max)
            ),
        )
    };
    if opened.len() > max {
        return Err(too_large(opened.len()));
    }
    // The file may grow after it was measured: no more than the bound is read.
    let mut bytes = Vec::new();
    file.take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io_err)?;
    if bytes.len() as u64 > max {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

/// Whether two metadata describe the same file.
#[cfg(unix)]
fn same_file(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.dev() == b.dev() && a.ino() == b.ino()
}

/// Whether two metadata describe the same file (as far as can be told here).
#[cfg(not(unix))]
fn same_file(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    b.is_file() && a.len() == b.len()
}

/// The component of the module directory `dir`, the file its module.xml's `<component>`
/// names, read as packing reads it (a regular file, not through a link, a WebAssembly
/// file): for what is checked of a component before it is packed.
pub fn read_component(dir: &Path, component: &str) -> Result<Vec<u8>, Error> {
    read_wasm(&dir.join(component), dir)
}

/// What to do about a missing `what`: a component is built before it is packed.
fn missing_hint(what: &str) -> &'static str {
    if what == "the component" {
        ": build the module first (`./build.sh` in a directory `modhost new` made)"
    } else {
        ""
    }
}

/// The regular file `path` (see [`read_regular`]), refused unless it is WebAssembly;
/// `out` is what messages name.
fn read_wasm(path: &Path, out: &Path) -> Result<Vec<u8>, Error> {
    let max = Limits::default().max_total_size;
    let wasm = read_regular(path, out, "the component", max)?;
    if !wasm.starts_with(WASM_MAGIC) {
        return Err(refused(
            out,
            format!(
                "the component `{}` is not a WebAssembly file (it does not start with the \
                 WebAssembly magic bytes); build the module for wasm32-wasip2 and pack the \
                 `.wasm` it makes",
                shown_str(&path.display().to_string())
            ),
        ));
    }
    Ok(wasm)
}

/// Writes a package for the module described by `module_xml`, with `component` stored
/// under the name its `<component>` element gives. Returns the parsed manifest.
pub fn pack(module_xml: &Path, component: &Path, out: &Path) -> Result<Manifest, Error> {
    let io_err = |context: String| {
        move |source| Error::Io {
            package: out.to_owned(),
            context,
            source,
        }
    };
    refuse_link(out, "the package to write")?;
    let source = read_regular(
        module_xml,
        out,
        "module.xml",
        modhost_manifest::MAX_SIZE as u64,
    )?;
    let manifest =
        Manifest::parse_bytes(&source, &module_xml.display().to_string()).map_err(|source| {
            Error::Manifest {
                package: out.to_owned(),
                source,
            }
        })?;
    let wasm = read_wasm(component, out)?;
    let rawname = &manifest.rawname;
    let file = fs_err::File::create(out).map_err(io_err("cannot create".into()))?;
    let written = write_tar(file, rawname, &manifest.component, &source, &wasm)
        .map_err(io_err("cannot write".into()))?;
    // What unpacking would refuse as a bomb is not written as a package.
    let limits = Limits::default();
    let compressed = fs_err::metadata(out)
        .map_err(io_err("cannot measure".into()))?
        .len();
    if written > limits.most_unpacked(compressed) {
        let _ = fs_err::remove_file(out);
        return Err(refused(
            out,
            format!(
                "the component `{}` compresses more than {}:1 ({} to {}), which modhost \
                 refuses as a decompression bomb: it is not a component a compiler made",
                shown_str(&component.display().to_string()),
                limits.max_ratio,
                crate::budget::amount(written),
                crate::budget::amount(compressed)
            ),
        ));
    }
    Ok(manifest)
}

/// Writes the package's gzip tar to `file`: the module's directory, its module.xml
/// (`source`) and its component (`wasm`, named `component`). Returns the tar's length.
fn write_tar(
    file: fs_err::File,
    rawname: &str,
    component: &str,
    source: &[u8],
    wasm: &[u8],
) -> io::Result<u64> {
    let counted = Counted {
        inner: GzEncoder::new(file, Compression::best()),
        written: 0,
    };
    let mut builder = tar::Builder::new(counted);
    let entries: [(String, &[u8]); 2] = [
        (format!("{rawname}/module.xml"), source),
        (format!("{rawname}/{component}"), wasm),
    ];
    let mut dir = tar::Header::new_gnu();
    dir.set_entry_type(tar::EntryType::Directory);
    dir.set_mode(0o755);
    dir.set_size(0);
    dir.set_mtime(0);
    builder.append_data(&mut dir, format!("{rawname}/"), io::empty())?;
    for (name, data) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_mode(0o644);
        header.set_size(data.len() as u64);
        header.set_mtime(0);
        builder.append_data(&mut header, &name, data)?;
    }
    let mut counted = builder.into_inner()?;
    counted.flush()?;
    counted.inner.finish()?;
    Ok(counted.written)
}

/// A writer that counts what passes through it: the tar's length, before gzip.
struct Counted<W> {
    inner: W,
    written: u64,
}

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
