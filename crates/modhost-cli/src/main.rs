//! `modhost`: the administrator's command line over the modhost library.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

mod commands;
mod output;

/// Install, list and remove PBX modules that run as sandboxed WebAssembly components.
#[derive(Debug, Parser)]
#[command(name = "modhost", version, about)]
struct Cli {
    /// The modhost root: state database, modules, their data and compiled components.
    /// Defaults to `$MODHOST_ROOT`, else a per-user data directory.
    #[arg(long, global = true, env = "MODHOST_ROOT", value_name = "DIR")]
    root: Option<PathBuf>,

    /// Print one JSON document on stdout instead of text.
    #[arg(long, global = true)]
    json: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Install module packages (dependencies first; all or nothing).
    Install(commands::install::Args),
    /// List installed modules.
    List(commands::list::Args),
    /// Run a module's uninstall() and remove it with its data.
    Uninstall(commands::uninstall::Args),
    /// Show a module's key-value store.
    Kv(commands::kv::Args),
    /// Pack a module directory (module.xml + component) into a package.
    Pack(commands::pack::Args),
    /// Show a module.xml, module directory or package's manifest, or every error in it.
    Manifest(commands::manifest::Args),
    /// Compare two versions in FreePBX's order, like dpkg --compare-versions.
    CompareVersions(commands::compare_versions::Args),
    /// Check a module's dependencies against the installed modules and the platform.
    Checkdepends(commands::checkdepends::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    output::init_tracing();
    let json = cli.json;
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            let _ = output::Output::new(json).error(&format!("{error:#}"));
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    let root = match cli.root {
        Some(root) => root,
        None => dirs::data_local_dir()
            .context("no --root, no MODHOST_ROOT, and no per-user data directory")?
            .join("modhost"),
    };
    let out = output::Output::new(cli.json);
    let done = match cli.command {
        Command::Install(args) => commands::install::run(&root, &out, args),
        Command::List(args) => commands::list::run(&root, &out, args),
        Command::Uninstall(args) => commands::uninstall::run(&root, &out, args),
        Command::Kv(args) => commands::kv::run(&root, &out, args),
        Command::Pack(args) => commands::pack::run(&out, args),
        Command::Manifest(args) => commands::manifest::run(&out, args),
        Command::CompareVersions(args) => return commands::compare_versions::run(&out, args),
        Command::Checkdepends(args) => return commands::checkdepends::run(&root, &out, args),
    };
    done.map(|()| ExitCode::SUCCESS)
}
