//! One file per command: its arguments and a call into the library.

pub mod install;
pub mod kv;
pub mod list;
pub mod pack;
pub mod uninstall;
