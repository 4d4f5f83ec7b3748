//! The committed header is what cbindgen writes from the source today: C and PHP
//! applications read `include/modhost.h`, never the Rust.

use std::path::Path;

#[test]
fn the_committed_header_is_what_cbindgen_writes() -> Result<(), Box<dyn std::error::Error>> {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))?;
    let mut written = Vec::new();
    cbindgen::Builder::new()
        .with_config(config)
        .with_src(crate_dir.join("src/lib.rs"))
        .generate()?
        .write(&mut written);
    let written = String::from_utf8(written)?;
    let committed_path = crate_dir.join("include/modhost.h");
    let committed = std::fs::read_to_string(&committed_path).unwrap_or_default();
    if written == committed {
        return Ok(());
    }
    if std::env::var_os("MODHOST_BLESS").is_some() {
        std::fs::write(&committed_path, written)?;
        return Ok(());
    }
    Err(format!(
        "{} is stale: rerun this test with MODHOST_BLESS=1 and commit the header",
        committed_path.display()
    )
    .into())
}
