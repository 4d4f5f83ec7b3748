//! One file per command: its arguments and a call into the library.

pub mod checkdepends;
pub mod compare_versions;
pub mod install;
pub mod kv;
pub mod list;
pub mod manifest;
pub mod pack;
pub mod uninstall;
