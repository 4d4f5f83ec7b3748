//! Module versions, ordered the way FreePBX orders them, and constraints on them.
//!
//! FreePBX compares module versions with PHP's `version_compare`: `1.10 > 1.9`,
//! `1.0 < 1.0.0`, `2.11.0rc1 < 2.11.0`, `1.0b1 == 1.0beta1`. PHP's function is not a total
//! order on arbitrary strings, so [`Version`] accepts only a strict grammar — numbers
//! separated by dots, optionally followed by one release word and more numbers — on which
//! the same comparison is a total order.
//!
//! ```
//! use modhost_version::{Op, Version};
//!
//! let rc: Version = "2.11.0rc1".parse()?;
//! let release: Version = "2.11.0".parse()?;
//! assert!(rc < release);
//! assert!(Op::Ge.holds(&release, &rc));
//! # Ok::<(), modhost_version::Error>(())
//! ```

mod constraint;
mod error;
mod stage;
mod version;

pub use constraint::{Op, Requirement};
pub use error::Error;
pub use stage::Stage;
pub use version::Version;

#[cfg(test)]
mod tests;
