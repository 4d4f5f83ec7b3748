//! What every entry of a package is held to, the same whether the package is unpacked or
//! only its module.xml read, so that `list --from` never offers a package `install`
//! refuses: its path's length, its kind, its name among the others' ([`Layout`]), a
//! module.xml's size, and the sizes declared in all ([`Declared`]).

use std::path::Path;

use crate::budget::{Declared, Limits};
use crate::error::{Error, refused};
use crate::escape::shown;
use crate::manifest::{check_manifest_size, manifest_place};
use crate::names::Layout;
use crate::staging::{Kind, is_desktop_metadata, not_regular, path_len_refusal};

/// What an entry that passed is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admitted {
    /// Passed over: what a desktop adds beside a module, or the archive's root itself.
    Skipped,
    /// A directory.
    Dir,
    /// A regular file.
    File,
}

/// The entries of one package so far.
pub(crate) struct Entries {
    /// What they lay out.
    pub(crate) layout: Layout,
    /// The sizes they declare, against what the package may unpack to.
    declared: Declared,
    limits: Limits,
}

impl Entries {
    /// None yet, of a package of `length` bytes read under `limits`.
    pub(crate) fn new(limits: &Limits, length: u64) -> Self {
        Entries {
            layout: Layout::default(),
            declared: Declared::new(limits, length),
            limits: *limits,
        }
    }

    /// Checks the entry of `package` named `raw` (at `parts`) of `kind`, declaring `size`
    /// bytes: refused, saying why, or what it is.
    pub(crate) fn admit(
        &mut self,
        package: &Path,
        raw: &[u8],
        parts: &[String],
        (kind, size): (&Kind, u64),
    ) -> Result<Admitted, Error> {
        let shown = shown(raw);
        if let Some(refusal) = path_len_refusal(raw, &self.limits) {
            return Err(refused(package, refusal));
        }
        if is_desktop_metadata(parts) {
            return Ok(Admitted::Skipped);
        }
        // Before the root itself (`./`) is passed over: a link named so is still one.
        let dir = match kind {
            Kind::Other(what) => return Err(refused(package, not_regular(&shown, what))),
            Kind::Dir => true,
            Kind::File => false,
        };
        if parts.is_empty() {
            return Ok(Admitted::Skipped);
        }
        self.layout
            .admit(parts, dir, &shown)
            .map_err(|problem| refused(package, problem))?;
        // Said as itself, before its size counts against the whole package.
        if !dir && manifest_place(parts).is_some() {
            check_manifest_size(package, &shown, size)?;
        }
        self.declared
            .add(size, &shown)
            .map_err(|problem| refused(package, problem))?;
        Ok(if dir { Admitted::Dir } else { Admitted::File })
    }
}
