//! One function per command: its arguments and a call into the library.

pub mod change;
pub mod checkdepends;
pub mod compare_versions;
pub mod hook;
pub mod inspect;
pub mod list;
pub mod manifest;
pub mod new;
pub mod online;
pub mod pack;
pub mod recover;
pub mod repo;
pub mod scan;
