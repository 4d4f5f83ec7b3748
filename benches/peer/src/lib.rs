//! modhost against Extism: the benchmark is `benches/peer.rs`, run by `benches/peer/run`.
//! This library is empty; it exists because a cargo package needs a target besides its
//! benchmarks.
