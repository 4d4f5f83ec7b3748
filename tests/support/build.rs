//! Builds every example module for wasm32-wasip2 and packs it, so tests install the real
//! components. Guests build in their own target directory: the outer cargo holds the lock
//! on the main one.

use std::path::{Path, PathBuf};

fn main() {
    if let Err(error) = build() {
        eprintln!("error: {error:#}");
        std::process::exit(1);
    }
}

fn build() -> Result<(), Box<dyn std::error::Error>> {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let workspace = manifest_dir
        .parent()
        .and_then(Path::parent)
        .ok_or("tests/support is two levels below the workspace")?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?).join("modules");
    let cargo = PathBuf::from(std::env::var("CARGO")?);
    for watched in [
        "example-modules",
        "tests/guests",
        "crates/modhost-sdk",
        "wit",
        "examples/wit",
    ] {
        println!(
            "cargo:rerun-if-changed={}",
            workspace.join(watched).display()
        );
    }
    let mut dirs = xtask::module_crates(&workspace.join("example-modules"))?;
    dirs.extend(xtask::module_crates(&workspace.join("tests/guests"))?);
    let packed = xtask::build_modules(
        &cargo,
        workspace,
        &dirs,
        &workspace.join("target/wasm-guests"),
        &out,
    )?;
    let mut index = String::new();
    for module in packed {
        index.push_str(&format!(
            "{}\t{}\t{}\t{}\n",
            module.rawname,
            module.version,
            module.package.display(),
            module.component.display()
        ));
    }
    std::fs::write(out.join("index.tsv"), index)?;
    println!("cargo:rustc-env=MODHOST_TEST_PACKAGES={}", out.display());
    Ok(())
}
