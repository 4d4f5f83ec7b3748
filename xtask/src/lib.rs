//! Project automation shared by `cargo xtask` and the test suite's build script.
//!
//! [`build_example_modules`] compiles every crate under `example-modules/` for
//! `wasm32-wasip2` and packs each into `<rawname>-<version>.tgz`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// The target guests are built for.
pub const GUEST_TARGET: &str = "wasm32-wasip2";

/// The cargo profile guests are built with (see the workspace Cargo.toml).
pub const GUEST_PROFILE: &str = "guest";

/// A built and packed module.
#[derive(Debug, Clone)]
pub struct Packed {
    /// The module's rawname.
    pub rawname: String,
    /// The module's version.
    pub version: String,
    /// The package file.
    pub package: PathBuf,
    /// The component the package holds, as built.
    pub component: PathBuf,
    /// The application APIs it imports (`<capabilities><import>`), which only an embedding
    /// application gives: the plain `modhost` command refuses it.
    pub imports_application: Vec<String>,
}

/// The directories under `dir` that hold a `Cargo.toml` and a `module.xml`, sorted.
pub fn module_crates(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut crates = Vec::new();
    for entry in fs_err::read_dir(dir)? {
        let path = entry?.path();
        if path.join("Cargo.toml").is_file() && path.join("module.xml").is_file() {
            crates.push(path);
        }
    }
    crates.sort();
    Ok(crates)
}

/// Builds the module crates in `dirs` for the guest target into `target_dir`, then packs
/// each into `out`. `cargo` is the cargo binary to run.
pub fn build_modules(
    cargo: &Path,
    workspace: &Path,
    dirs: &[PathBuf],
    target_dir: &Path,
    out: &Path,
) -> Result<Vec<Packed>> {
    let mut names = Vec::new();
    for dir in dirs {
        names.push(package_name(&dir.join("Cargo.toml"))?);
    }
    let mut command = Command::new(cargo);
    command
        .current_dir(workspace)
        .args([
            "build",
            "--target",
            GUEST_TARGET,
            "--profile",
            GUEST_PROFILE,
            "--target-dir",
        ])
        .arg(target_dir);
    for name in &names {
        command.args(["--package", name]);
    }
    // When run from a build script, cargo's variables describe the outer build; the
    // guest build must not inherit them.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if (key.starts_with("CARGO_") && key != "CARGO_HOME")
            || key.starts_with("RUSTC")
            || key == "RUSTFLAGS"
        {
            command.env_remove(key.as_ref());
        }
    }
    let status = command.status().context("cannot run cargo")?;
    if !status.success() {
        bail!(
            "building the example modules for {GUEST_TARGET} failed ({status}); is the target installed? (rustup target add {GUEST_TARGET})"
        );
    }
    fs_err::create_dir_all(out)?;
    let mut packed = Vec::new();
    for (dir, name) in dirs.iter().zip(&names) {
        let wasm = target_dir
            .join(GUEST_TARGET)
            .join(GUEST_PROFILE)
            .join(format!("{}.wasm", name.replace('-', "_")));
        let staging = out.join(format!(".{name}.tgz"));
        let manifest = modhost_package::pack(&dir.join("module.xml"), &wasm, &staging)?;
        let package = out.join(format!("{}-{}.tgz", manifest.rawname, manifest.version));
        fs_err::rename(&staging, &package)?;
        let imports_application = manifest
            .capabilities
            .iter()
            .filter_map(|c| match c {
                modhost_manifest::Capability::Import { package } => Some(package.clone()),
                modhost_manifest::Capability::Directory { .. } => None,
            })
            .collect();
        packed.push(Packed {
            rawname: manifest.rawname,
            version: manifest.version.to_string(),
            package,
            component: wasm,
            imports_application,
        });
    }
    Ok(packed)
}

/// The `package.name` of a Cargo.toml.
fn package_name(cargo_toml: &Path) -> Result<String> {
    let text = fs_err::read_to_string(cargo_toml)?;
    let table: toml::Table = text
        .parse()
        .with_context(|| format!("cannot parse {}", cargo_toml.display()))?;
    table
        .get("package")
        .and_then(|p| p.get("name"))
        .and_then(toml::Value::as_str)
        .map(str::to_owned)
        .with_context(|| format!("no package name in {}", cargo_toml.display()))
}
