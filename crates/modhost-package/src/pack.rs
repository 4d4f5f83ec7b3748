//! Packing: a gzip tar written reproducibly, so the same module always packs to the same
//! bytes.

use std::io::{self, Write};
use std::path::Path;

use flate2::Compression;
use flate2::write::GzEncoder;
use modhost_manifest::Manifest;

use crate::error::Error;

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
    let source = fs_err::read(module_xml).map_err(io_err("cannot read module.xml".into()))?;
    let manifest =
        Manifest::parse_bytes(&source, &module_xml.display().to_string()).map_err(|source| {
            Error::Manifest {
                package: out.to_owned(),
                source,
            }
        })?;
    let wasm = fs_err::read(component).map_err(io_err("cannot read the component".into()))?;
    let rawname = &manifest.rawname;
    let file = fs_err::File::create(out).map_err(io_err("cannot create".into()))?;
    let mut builder = tar::Builder::new(GzEncoder::new(file, Compression::best()));
    let entries: [(String, &[u8]); 2] = [
        (format!("{rawname}/module.xml"), source.as_slice()),
        (format!("{rawname}/{}", manifest.component), &wasm),
    ];
    let mut dir = tar::Header::new_gnu();
    dir.set_entry_type(tar::EntryType::Directory);
    dir.set_mode(0o755);
    dir.set_size(0);
    dir.set_mtime(0);
    builder
        .append_data(&mut dir, format!("{rawname}/"), io::empty())
        .map_err(io_err("cannot write".into()))?;
    for (name, data) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_mode(0o644);
        header.set_size(data.len() as u64);
        header.set_mtime(0);
        builder
            .append_data(&mut header, &name, data)
            .map_err(io_err(format!("cannot write `{name}`")))?;
    }
    let mut gz = builder
        .into_inner()
        .map_err(io_err("cannot finish".into()))?;
    gz.flush().map_err(io_err("cannot finish".into()))?;
    gz.finish().map_err(io_err("cannot finish".into()))?;
    Ok(manifest)
}
