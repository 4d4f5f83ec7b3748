//! `modhost`: the administrator's command line over the modhost library.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::{Parser, Subcommand};
use modhost::Host;

mod commands;
mod escape;
mod interrupt;
mod output;
mod progress;
mod surface;

use commands::{change, inspect};

/// Install, upgrade and remove PBX modules that run as sandboxed WebAssembly components.
#[derive(Debug, Parser)]
#[command(name = "modhost", version, about)]
struct Cli {
    /// The modhost root: state database, modules, their data and compiled components.
    /// Defaults to `$MODHOST_ROOT` (when set and not empty), else a per-user data
    /// directory.
    #[arg(long, global = true, value_name = "DIR")]
    root: Option<PathBuf>,

    /// Print one JSON document on stdout instead of text.
    #[arg(long, global = true)]
    json: bool,

    /// Fail at once instead of waiting when another modhost process is changing the root.
    #[arg(long, global = true)]
    no_wait: bool,

    /// Also trust every CA certificate in this PEM file for update sources, beside the public roots.
    #[arg(long, global = true, value_name = "FILE")]
    ca_cert: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Install modules from packages or the package directory (dependencies first; all or nothing).
    Install(change::PackageArgs),
    /// Install or upgrade every module the package directory holds a newer version of.
    Installlocal(change::LocalArgs),
    /// Upgrade installed modules from packages (the old version is kept for rollback).
    Upgrade(change::PackageArgs),
    /// Upgrade every installed module the package directory holds a newer version of.
    Upgradeall(change::LocalArgs),
    /// Run modules' uninstall() and remove them with their data and tables (dependents
    /// first; all of them or none).
    Uninstall(change::ModuleArgs),
    /// Remove modules without running their code (for broken modules).
    Delete(change::ModuleArgs),
    /// Enable disabled modules (dependencies first; all of them or none).
    Enable(change::EnableArgs),
    /// Disable modules: their handlers stop running (dependents first; all of them or none).
    Disable(change::DisableArgs),
    /// Return a module to the version its last upgrade replaced.
    Rollback(change::RollbackArgs),
    /// List installed modules, and those the package directory offers as not-installed.
    List(commands::list::Args),
    /// Show everything about a module, installed or in the package directory.
    Info(inspect::InfoArgs),
    /// Show a module's key-value store.
    Kv(inspect::Rawname),
    /// Show the rows of a table a module owns.
    Rows(inspect::TableArgs),
    /// List the running modules that depend on a module.
    Reversedepends(inspect::Rawname),
    /// Check a module's dependencies against the installed modules and the platform.
    Checkdepends(commands::checkdepends::Args),
    /// Repair the root after a crash (every change also does this first).
    Recover(commands::recover::Args),
    /// Describe the newest of each module's packages and module directories in a
    /// directory: versions, installability, component exports; exits non-zero, after
    /// describing the rest, if any cannot be read.
    Scan(commands::scan::Args),
    /// Fire a hook point and show each handler's result, in the order they ran.
    Hook(commands::hook::Args),
    /// Regenerate the configuration from every running module's get_config, in priority order.
    Reload,
    /// Grant a module the host directories its module.xml asks for.
    Grant(inspect::Rawname),
    /// Withdraw every grant of a module.
    Revoke(inspect::Rawname),
    /// Pack a module directory (module.xml + component) into a package.
    ///
    /// Only module.xml and the component go in: the component is all modhost runs, and
    /// a module's files at run time are its /data. Sources, build output and assets in
    /// the directory are left out.
    Pack(commands::pack::Args),
    /// Start a module: a directory with module.xml, the source and a build script, in Rust,
    /// Python or JavaScript.
    New(commands::new::Args),
    /// Show a module.xml, module directory or package's manifest, or every error in it.
    Manifest(commands::manifest::Args),
    /// Compare two versions in FreePBX's order, like dpkg --compare-versions.
    CompareVersions(commands::compare_versions::Args),
    /// Manage update sources.
    #[command(subcommand)]
    Source(commands::online::SourceCommand),
    /// Ask every update source what it offers.
    CheckOnline,
    /// Show the upgrades the update sources offer, or with --from those a package
    /// directory holds.
    Showupgrades(commands::online::ShowupgradesArgs),
    /// Download a module's newest verified package from the update sources.
    Download(commands::online::DownloadArgs),
    /// Publish: build, serve, sign a repository; make licence secrets and keys.
    #[command(subcommand)]
    Repo(commands::repo::RepoCommand),
}

/// Whether a change may make the root it is given.
#[derive(Debug, Clone, Copy)]
pub enum Root {
    /// Made if there is none yet: installing, adding a source.
    MadeIfMissing,
    /// Refused if there is none (the per-user default, not made yet, reads as one with
    /// nothing installed): upgrading, which needs something installed.
    Existing,
}

/// What every command needs: where the root is and how to talk.
pub struct Context {
    root: PathBuf,
    /// Whether the root was named (`--root`, `MODHOST_ROOT`) rather than the per-user
    /// default, which a fresh machine has not made yet.
    named_root: bool,
    out: output::Output,
    no_wait: bool,
    ca_cert: Option<PathBuf>,
}

impl Context {
    /// Opens the root, with progress shown on stderr (in JSON mode only lock waits).
    pub fn open(&self) -> Result<Host> {
        self.configure(Host::open(&self.root)?)
    }

    /// Runs `change` on the root, made if there is none yet when `root` says so (an
    /// install, a source: what a new root is for), else refused as
    /// [`Context::open_existing`] refuses it (an upgrade: nothing is installed there).
    /// When the change fails, what was made for it is removed again: a mistyped `--root`
    /// is not left behind by a failed install (unless the install compiled a component
    /// that loads, whose code is kept for trying again).
    pub fn change<T>(
        &self,
        root: Root,
        change: impl FnOnce(&Host) -> modhost::Result<T>,
    ) -> Result<(Host, T)> {
        interrupt::catch_signals();
        let host = match root {
            Root::MadeIfMissing => self.open()?,
            Root::Existing => self.open_existing()?,
        };
        interrupt::stop_changes_on_signal(host.interruption());
        match change(&host) {
            Ok(done) => Ok((host, done)),
            Err(error) => {
                if let Err(e) = host.discard_if_unused() {
                    tracing::warn!("cannot remove the root this command made: {e}");
                }
                Err(error.into())
            }
        }
    }

    /// Opens the root for a command that reads it or changes a module already there: a
    /// root that does not exist is an error, not created.
    /// The default root, not made yet, reads as one with nothing installed: a first
    /// `modhost list` on a fresh machine is not an error.
    pub fn open_existing(&self) -> Result<Host> {
        match Host::open_existing(&self.root) {
            Err(modhost::Error::NoRoot(_)) if !self.named_root => {
                self.configure(Host::open_scratch()?)
            }
            opened => self.configure(opened?),
        }
    }

    /// [`Context::open_existing`], for a change to a module installed there: Ctrl-C stops
    /// it before it commits.
    pub fn open_to_change(&self) -> Result<Host> {
        interrupt::catch_signals();
        let host = self.open_existing()?;
        interrupt::stop_changes_on_signal(host.interruption());
        Ok(host)
    }

    /// Opens the root if there is one, else a throwaway one: for commands that need no root.
    pub fn open_or_scratch(&self) -> Result<Host> {
        self.existing_or_scratch(false)
    }

    /// [`Context::open_or_scratch`], for reading modules against what is installed: a
    /// root named but not there may be a typo, and that it is read as if nothing were
    /// installed is said.
    pub fn open_to_compare(&self) -> Result<Host> {
        self.existing_or_scratch(true)
    }

    /// The root, else a throwaway one; `noting` that a root named is not there.
    fn existing_or_scratch(&self, noting: bool) -> Result<Host> {
        match Host::open_existing(&self.root) {
            Err(modhost::Error::NoRoot(_)) => {
                if noting && self.named_root {
                    eprintln!(
                        "note: there is no modhost root at `{}`: read as if nothing were \
                         installed",
                        crate::escape::escape_path(&self.root)
                    );
                }
                self.configure(Host::open_scratch()?)
            }
            opened => self.configure(opened?),
        }
    }

    /// The root the command names: the per-user default's path even before it is made.
    pub fn root(&self) -> &std::path::Path {
        &self.root
    }

    fn configure(&self, host: Host) -> Result<Host> {
        let mut host = host.wait_for_lock(!self.no_wait);
        if let Some(ca_cert) = &self.ca_cert {
            host = host.with_ca_cert(ca_cert);
        }
        Ok(self.out.with_reporter(host))
    }
}

/// The exit code of a command whose output's reader went away, as a shell reports one
/// SIGPIPE ended (128 + 13).
const BROKEN_PIPE: u8 = 141;

fn main() -> ExitCode {
    let cli = match parse() {
        Ok(cli) => cli,
        Err(error) => return usage_error(&error, json_requested(std::env::args_os().skip(1))),
    };
    let serving = matches!(
        cli.command,
        Command::Repo(commands::repo::RepoCommand::Serve { .. })
    );
    let _log = output::init_tracing(serving);
    let json = cli.json;
    let asked = match cli.command {
        Command::Install(_) | Command::Installlocal(_) => output::Asked::Install,
        Command::Upgrade(_) => output::Asked::Upgrade,
        Command::Upgradeall(_) => output::Asked::Upgradeall,
        Command::Enable(_) => output::Asked::Enable,
        Command::Rollback(_) => output::Asked::Rollback,
        _ => output::Asked::Other,
    };
    match run(cli) {
        Ok(code) => code,
        // A reader that stopped reading (`| head`) is no failure to report: ended as a
        // program the shell's SIGPIPE ended is.
        Err(error)
            if error
                .downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            ExitCode::from(BROKEN_PIPE)
        }
        Err(error) => {
            let _ = output::Output::new(json).error_after(&error, asked);
            let interrupted = error.chain().any(|e| {
                matches!(
                    e.downcast_ref::<modhost::Error>(),
                    Some(modhost::Error::Interrupted)
                )
            });
            if interrupted {
                ExitCode::from(interrupt::INTERRUPTED)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// Parses the command line; `--version` also names the WIT versions this host runs,
/// which is what a module author needs to know.
fn parse() -> Result<Cli, clap::Error> {
    use clap::{CommandFactory, FromArgMatches};
    let version = format!(
        "{} (runs components built against modhost:module@{})",
        env!("CARGO_PKG_VERSION"),
        modhost::SUPPORTED_API_VERSIONS.join(", @")
    );
    // Parsed once per process: leaking the string is what `&'static str` costs here.
    let version: &'static str = version.leak();
    let matches = Cli::command().version(version).try_get_matches()?;
    Cli::from_arg_matches(&matches)
}

/// Whether `--json` is among the command line's options, before the subcommand or after
/// it: looked for by hand because clap could not parse the command line. Nothing after
/// `--` is an option.
fn json_requested(args: impl IntoIterator<Item = std::ffi::OsString>) -> bool {
    args.into_iter()
        .take_while(|arg| arg != "--")
        .any(|arg| arg == "--json")
}

/// Reports a command line clap refused, or prints the help or version it was asked for.
/// A usage error keeps clap's text on stderr and its exit status (2); under `--json`,
/// stdout also gets `{"error": …}` with clap's message in plain text, as for every other
/// error. Help and version print as usual and exit 0; under `--json`, the version is
/// `{"version", "module_api"}`.
fn usage_error(error: &clap::Error, json: bool) -> ExitCode {
    if json && error.kind() == clap::error::ErrorKind::DisplayVersion {
        let document = serde_json::json!({
            "version": env!("CARGO_PKG_VERSION"),
            "module_api": modhost::SUPPORTED_API_VERSIONS,
        });
        let _ = writeln!(std::io::stdout(), "{document}");
        return ExitCode::SUCCESS;
    }
    if json && error.use_stderr() {
        let text = error.render().to_string();
        let message = text.trim();
        let message = message
            .strip_prefix("error:")
            .map_or(message, str::trim_start);
        let document = serde_json::json!({ "error": message });
        let _ = writeln!(std::io::stdout(), "{document}");
    }
    let _ = error.print();
    ExitCode::from(u8::try_from(error.exit_code()).unwrap_or(2))
}

fn run(cli: Cli) -> Result<ExitCode> {
    // Read here rather than by clap, which takes a variable set but empty for a value
    // missing: an empty one is as good as unset.
    let from_env = std::env::var_os("MODHOST_ROOT")
        .filter(|root| !root.is_empty())
        .map(PathBuf::from);
    let named = cli.root.or(from_env);
    let named_root = named.is_some();
    // `~` is the shell's, expanded only at the start of a word it sees: quoted, or after
    // `--root=`, it reaches here as it is, and would make a root in a directory named `~`.
    if let Some(root) = named
        .as_deref()
        .filter(|root| root.as_os_str().as_encoded_bytes().starts_with(b"~"))
    {
        anyhow::bail!(
            "the root `{}` starts with `~`, which the shell did not expand (it was quoted, or \
             followed `=`): give the whole path, or `$HOME/…` unquoted",
            crate::escape::escape(&root.display().to_string()),
        );
    }
    let root = match named {
        Some(root) => root,
        None => dirs::data_local_dir()
            .context("no --root, no MODHOST_ROOT, and no per-user data directory")?
            .join("modhost"),
    };
    let ctx = Context {
        root,
        named_root,
        out: output::Output::new(cli.json),
        no_wait: cli.no_wait,
        ca_cert: cli.ca_cert,
    };
    let done = match cli.command {
        Command::Install(args) => change::packages(
            &ctx,
            args,
            Root::MadeIfMissing,
            Host::install_from,
            Host::install_online,
        ),
        Command::Installlocal(args) => {
            change::local(&ctx, args, Root::MadeIfMissing, Host::install_local, None)
        }
        Command::Upgrade(args) => change::packages(
            &ctx,
            args,
            Root::Existing,
            Host::upgrade_from,
            Host::upgrade_online,
        ),
        Command::Upgradeall(args) => change::local(
            &ctx,
            args,
            Root::Existing,
            Host::upgrade_all,
            Some(Host::upgrade_online),
        ),
        Command::Uninstall(args) => change::module(&ctx, args, Host::uninstall_all),
        Command::Delete(args) => change::module(&ctx, args, Host::delete_all),
        Command::Enable(args) => change::enable(&ctx, args),
        Command::Disable(args) => change::disable(&ctx, args),
        Command::Rollback(args) => change::rollback(&ctx, args),
        Command::List(args) => commands::list::run(&ctx, args),
        Command::Info(args) => inspect::info(&ctx, args),
        Command::Kv(args) => inspect::kv(&ctx, args),
        Command::Rows(args) => inspect::rows(&ctx, args),
        Command::Reversedepends(args) => inspect::reversedepends(&ctx, args),
        Command::Checkdepends(args) => return commands::checkdepends::run(&ctx, args),
        Command::Recover(args) => commands::recover::run(&ctx, args),
        Command::Scan(args) => return commands::scan::run(&ctx, args),
        Command::Hook(args) => return commands::hook::run(&ctx, args),
        Command::Reload => commands::hook::reload(&ctx),
        Command::Grant(args) => inspect::grant(&ctx, args),
        Command::Revoke(args) => inspect::revoke(&ctx, args),
        Command::Pack(args) => commands::pack::run(&ctx.out, args),
        Command::New(args) => commands::new::run(&ctx.out, args),
        Command::Manifest(args) => return commands::manifest::run(&ctx, args),
        Command::CompareVersions(args) => return commands::compare_versions::run(&ctx.out, args),
        Command::Source(command) => commands::online::source(&ctx, command),
        Command::CheckOnline => return commands::online::check(&ctx, false),
        Command::Showupgrades(args) => return commands::online::showupgrades(&ctx, args),
        Command::Download(args) => commands::online::download(&ctx, args),
        Command::Repo(command) => commands::repo::run(&ctx, command),
    };
    done.map(|()| ExitCode::SUCCESS)
}
