//! `cargo xtask modules` builds and packs the example modules into `target/modules/`;
//! `cargo xtask demo` also installs them into a fresh demo root and lists them.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

fn main() -> Result<()> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("xtask lives inside the workspace")?
        .to_owned();
    match std::env::args().nth(1).as_deref() {
        Some("modules") => {
            modules(&workspace)?;
            Ok(())
        }
        Some("demo") => demo(&workspace),
        _ => bail!("usage: cargo xtask modules | demo"),
    }
}

fn cargo() -> PathBuf {
    std::env::var_os("CARGO").map_or_else(|| "cargo".into(), PathBuf::from)
}

fn modules(workspace: &Path) -> Result<Vec<xtask::Packed>> {
    let dirs = xtask::module_crates(&workspace.join("example-modules"))?;
    let target = workspace.join("target");
    let packed = xtask::build_modules(
        &cargo(),
        workspace,
        &dirs,
        &target.join("wasm-guests"),
        &target.join("modules"),
    )?;
    for module in &packed {
        println!(
            "packed {} {} -> {}",
            module.rawname,
            module.version,
            module.package.display()
        );
    }
    Ok(packed)
}

fn demo(workspace: &Path) -> Result<()> {
    let packed = modules(workspace)?;
    let status = Command::new(cargo())
        .current_dir(workspace)
        .args(["build", "--quiet", "--package", "modhost-cli"])
        .status()?;
    if !status.success() {
        bail!("building modhost failed");
    }
    let modhost = workspace.join("target/debug/modhost");
    let root = workspace.join("target/demo-root");
    if root.exists() {
        fs_err::remove_dir_all(&root)?;
    }
    // The PBX this demo stands in for, which <depends> and <supported> are checked against.
    fs_err::create_dir_all(&root)?;
    fs_err::write(
        root.join("modhost.toml"),
        "[platform]\nversion = \"16.0.40\"\nengine = { name = \"asterisk\", version = \"18.2\" }\n",
    )?;
    let run = |args: &[&std::ffi::OsStr]| -> Result<()> {
        println!(
            "$ modhost --root {} {}",
            root.display(),
            args.iter()
                .map(|a| a.to_string_lossy())
                .collect::<Vec<_>>()
                .join(" ")
        );
        let status = Command::new(&modhost)
            .arg("--root")
            .arg(&root)
            .args(args)
            .status()?;
        if !status.success() {
            bail!("modhost failed ({status})");
        }
        Ok(())
    };
    // Install the oldest version of each module, then upgrade from the package directory,
    // so the demo shows an upgrade and its data migration.
    let mut oldest: Vec<&xtask::Packed> = Vec::new();
    for module in &packed {
        // What imports an application's own API is for an embedding application to
        // install (the pbx example does): this command gives no such API.
        if !module.imports_application.is_empty() {
            println!(
                "(leaving out {}: it imports {}, which an embedding application gives — \
                 `cargo run -p modhost --example pbx -- target/modules` runs it)",
                module.rawname,
                module.imports_application.join(", ")
            );
            continue;
        }
        if !oldest.iter().any(|o| o.rawname == module.rawname) {
            oldest.push(module);
        }
    }
    let mut install: Vec<&std::ffi::OsStr> = vec!["install".as_ref()];
    install.extend(oldest.iter().map(|p| p.package.as_os_str()));
    run(&install)?;
    let modules_dir = workspace.join("target/modules");
    run(&[
        "upgradeall".as_ref(),
        "--from".as_ref(),
        modules_dir.as_os_str(),
    ])?;
    run(&["list".as_ref()])?;
    run(&[
        "hook".as_ref(),
        "lookup".as_ref(),
        "--payload".as_ref(),
        "2025550100".as_ref(),
    ])?;
    Ok(())
}
