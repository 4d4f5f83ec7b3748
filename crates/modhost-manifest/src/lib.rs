//! FreePBX-style module.xml: the typed model and its parser.
//!
//! [`Manifest::parse`] reads a module.xml into a [`Manifest`], reporting every problem it
//! finds at once, each with its line and column; [`Manifest::parse_bytes`] does the same
//! from the file's bytes, and says where they are not UTF-8, the only encoding accepted.
//!
//! Elements it does not know are kept (in [`Manifest::unknown`]) with a warning rather
//! than an error, so that real FreePBX files, which gain elements over time, load. The one
//! exception is `<capabilities>`: an unknown child there is an error, because it asks for
//! a permission modhost cannot show an administrator or grant safely, and running the
//! module without it would be running it without something it asked for. Failing closed
//! is the safe choice for permission requests.
//!
//! ```
//! use modhost_manifest::Manifest;
//!
//! let xml = r#"<module>
//!     <rawname>voicemail</rawname>
//!     <name>Voicemail</name>
//!     <version>16.0.12</version>
//!     <depends><module>core ge 16.0</module></depends>
//! </module>"#;
//! let manifest = Manifest::parse(xml, "module.xml")?;
//! assert_eq!(manifest.rawname, "voicemail");
//! assert_eq!(manifest.depends.modules[0].name, "core");
//! # Ok::<(), modhost_manifest::Error>(())
//! ```

pub use modhost_version::{Op, Requirement, Version};

mod defaults;
mod error;
mod model;
mod names;
mod parse;
mod read;
mod vocabulary;
pub mod xml;

pub use defaults::*;
pub use error::{Error, Problem};
pub use model::*;
pub use names::*;
pub use vocabulary::*;

#[cfg(test)]
mod tests;
