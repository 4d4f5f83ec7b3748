//! The C API called as a C application calls it: through its extern functions, with a
//! capability whose functions are one `extern "C"` callback taking JSON.

// Calling the C API is calling `unsafe extern "C"` functions with raw pointers.
#![allow(unsafe_code)]

#[path = "../common/mod.rs"]
mod common;

mod calls;
mod cancel;
mod failures;
mod log;
mod no_result;
mod telephony;
mod threads;

type TestResult = Result<(), Box<dyn std::error::Error>>;
