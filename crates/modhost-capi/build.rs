//! Gives the shared library its SONAME, so that an application linked against it by any
//! path records `libmodhost_capi.so`, found by the loader's search, not the path it was
//! linked from.

fn main() {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libmodhost_capi.so");
    }
}
