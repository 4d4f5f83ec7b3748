//! End-to-end tests of the `modhost` binary against the real example modules.

mod archives;
mod concurrency;
mod config;
mod contract;
mod crash;
mod damage;
mod disk;
mod downloads;
mod escapes;
mod freshness;
mod lifecycle;
mod links;
mod manifest;
mod messages;
mod new;
mod offers;
mod quota;
mod runaway;
mod sandbox;
mod transactions;
mod updates;

use modhost_test_support::Root;

/// A fresh root driven by this build's `modhost` binary.
fn root() -> Root {
    Root::new(env!("CARGO_BIN_EXE_modhost"))
}
