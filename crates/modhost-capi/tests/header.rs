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

#[test]
fn the_header_compiles_as_c89() -> Result<(), Box<dyn std::error::Error>> {
    // Asterisk and FreeSWITCH build with old C dialects; a `//` comment, or a C99-only
    // construct outside the standard headers, would stop them at the include.
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir()?;
    let source = dir.path().join("uses.c");
    std::fs::write(
        &source,
        "#include \"modhost.h\"\n#include \"modhost.h\"\n\
         int main(void) { modhost_string_free(NULL); return MODHOST_OK; }\n",
    )?;
    let output = std::process::Command::new("cc")
        .args([
            "-std=c89",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-fsyntax-only",
            "-I",
        ])
        .arg(crate_dir.join("include"))
        .arg(&source)
        .output()?;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}
