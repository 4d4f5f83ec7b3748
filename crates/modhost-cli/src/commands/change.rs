//! Commands that change modules: install, upgrade, installlocal, upgradeall, uninstall,
//! delete, enable, disable, rollback. Each is one call into the library.

use std::path::PathBuf;

use anyhow::Result;
use modhost::{Action, Change, Host, Options, Request};

use crate::escape::escape_path;
use crate::{Context, Root};

/// Arguments of `install` and `upgrade`.
#[derive(Debug, clap::Args)]
pub struct PackageArgs {
    /// Package files, module directories (module.xml beside the component), or module
    /// names to find in the package directory.
    #[arg(required = true, value_name = "PKG|NAME")]
    packages: Vec<std::ffi::OsString>,
    #[command(flatten)]
    local: LocalArgs,
}

/// Arguments of `installlocal` and `upgradeall`.
#[derive(Debug, clap::Args)]
pub struct LocalArgs {
    /// The package directory; defaults to `packages` in modhost.toml.
    #[arg(long, value_name = "DIR")]
    from: Option<PathBuf>,
    /// Skip dependency checks (never safety checks).
    #[arg(long)]
    force: bool,
    /// Grant the host directories the modules ask for in `<capabilities>`.
    #[arg(long)]
    grant: bool,
    /// Install a module's installed version again (otherwise it is left as it is).
    #[arg(long)]
    reinstall: bool,
    /// Use the update sources instead of package files or a package directory.
    #[arg(long, conflicts_with = "from")]
    online: bool,
}

impl LocalArgs {
    fn options(&self) -> Options {
        Options {
            force: self.force,
            grant: self.grant,
            reinstall: self.reinstall,
        }
    }
}

/// Arguments of `uninstall` and `delete`, which take several modules as one change.
#[derive(Debug, clap::Args)]
pub struct ModuleArgs {
    /// The modules' rawnames; those depending on others of them go first.
    #[arg(required = true)]
    rawnames: Vec<String>,
    /// Skip dependency checks and a module.xml's `<canuninstall>no` (never safety
    /// checks).
    #[arg(long)]
    force: bool,
}

/// Arguments of `rollback`.
#[derive(Debug, clap::Args)]
pub struct RollbackArgs {
    /// The module's rawname.
    rawname: String,
    /// Roll back even while running modules need the current version (never safety
    /// checks).
    #[arg(long)]
    force: bool,
}

/// Arguments of `disable`, which takes several modules as one change.
#[derive(Debug, clap::Args)]
pub struct DisableArgs {
    /// The modules' rawnames; those depending on others of them are disabled first.
    #[arg(required = true)]
    rawnames: Vec<String>,
    /// Disable it even while running modules depend on it or its module.xml says
    /// `<candisable>no`, and without running its disable() (for a module whose disable()
    /// hangs or keeps failing); its data is kept.
    #[arg(long)]
    force: bool,
}

/// Arguments of `enable`, which takes several modules as one change.
#[derive(Debug, clap::Args)]
pub struct EnableArgs {
    /// The modules' rawnames; dependencies among them are enabled first.
    #[arg(required = true)]
    rawnames: Vec<String>,
    /// Skip dependency checks (never safety checks).
    #[arg(long)]
    force: bool,
}

type PackageOp = fn(
    &Host,
    &[std::ffi::OsString],
    Option<&std::path::Path>,
    Options,
) -> modhost::Result<Vec<Change>>;
type LocalOp = fn(&Host, Option<&std::path::Path>, Options) -> modhost::Result<Vec<Change>>;
type OnlineOp = fn(&Host, &[String], Options) -> modhost::Result<Vec<Change>>;
type ModuleOp = fn(&Host, &[String], bool) -> modhost::Result<Vec<Change>>;

/// `install`/`upgrade`: the packages named, or found in the package directory, as one batch.
pub fn packages(
    ctx: &Context,
    args: PackageArgs,
    root: Root,
    op: PackageOp,
    online: OnlineOp,
) -> Result<()> {
    let options = args.local.options();
    let (host, changes) = ctx.change(root, |host| match args.local.online {
        true => online(host, &names(&args.packages)?, options),
        false => op(host, &args.packages, args.local.from.as_deref(), options),
    })?;
    done(ctx, host, &changes)
}

/// The module names `args` give, which are text.
fn names(args: &[std::ffi::OsString]) -> modhost::Result<Vec<String>> {
    args.iter()
        .map(|arg| {
            arg.to_str()
                .map(str::to_owned)
                .ok_or_else(|| modhost::Error::NotARawname(arg.to_string_lossy().into_owned()))
        })
        .collect()
}

/// `installlocal`/`upgradeall`: everything the package directory holds that applies, or
/// with `--online` what the update sources offer (`online`: `upgradeall` only; nothing
/// installs every module a source offers).
pub fn local(
    ctx: &Context,
    args: LocalArgs,
    root: Root,
    op: LocalOp,
    online: Option<OnlineOp>,
) -> Result<()> {
    let online = match (args.online, online) {
        (false, _) => None,
        (true, Some(online)) => Some(online),
        (true, None) => anyhow::bail!(
            "installlocal installs what the package directory holds; modules from the \
             update sources are installed by name: `modhost install --online NAME...`"
        ),
    };
    let (host, changes) = ctx.change(root, |host| match online {
        Some(online) => online(host, &[], args.options()),
        None => op(host, args.from.as_deref(), args.options()),
    })?;
    done(ctx, host, &changes)
}

/// Prints what a change of packages did; one that found nothing to do takes away the root
/// it made for it: a root holding nothing is a mistyped `--root` kept.
fn done(ctx: &Context, host: Host, changes: &[Change]) -> Result<()> {
    print(ctx, &host, changes)?;
    if changes.is_empty()
        && let Err(e) = host.discard_if_unused()
    {
        tracing::warn!("cannot remove the root this command made: {e}");
    }
    Ok(())
}

/// `uninstall A B…`, `delete A B…`: all of them or none.
pub fn module(ctx: &Context, args: ModuleArgs, op: ModuleOp) -> Result<()> {
    let host = ctx.open_to_change()?;
    print(ctx, &host, &op(&host, &args.rawnames, args.force)?)
}

/// `rollback NAME`.
pub fn rollback(ctx: &Context, args: RollbackArgs) -> Result<()> {
    let host = ctx.open_to_change()?;
    print(ctx, &host, &[host.rollback(&args.rawname, args.force)?])
}

/// `disable A B…`: all of them or none; `--force` runs none of their code.
pub fn disable(ctx: &Context, args: DisableArgs) -> Result<()> {
    let host = ctx.open_to_change()?;
    let options = modhost::DisableOptions {
        force: args.force,
        skip_code: args.force,
    };
    print(ctx, &host, &host.disable_all(&args.rawnames, options)?)
}

/// `enable A B…`: all of them or none.
pub fn enable(ctx: &Context, args: EnableArgs) -> Result<()> {
    let host = ctx.open_to_change()?;
    print(ctx, &host, &host.enable_all(&args.rawnames, args.force)?)
}

/// Prints what was done; once a configuration was built, says that it waits for a reload,
/// on stderr so that `--json` stays the list of changes.
fn print(ctx: &Context, host: &Host, changes: &[Change]) -> Result<()> {
    if !changes.is_empty() {
        crate::interrupt::note_if_too_late();
    }
    let configuration = host.configuration();
    // What was left as it is was said as it was met (on stderr), and is in `--json`.
    let changed = || changes.iter().filter(|c| c.action != Action::Unchanged);
    if changed().next().is_some() && configuration.is_file() {
        eprintln!(
            "note: {} still holds what the modules built before this change: `modhost reload` rebuilds it",
            escape_path(&configuration)
        );
    }
    ctx.out.result(&changes, || {
        // A module left as it is may still have been granted what it asks for.
        let granted = || {
            changes
                .iter()
                .filter(|c| c.action == Action::Unchanged && c.requests.iter().any(granted_now))
        };
        if changed().next().is_none() && granted().next().is_none() {
            return "nothing to do\n".to_owned();
        }
        let grants = granted().map(|c| {
            let version = c.to.as_deref().unwrap_or_default();
            format!("granted {} {version}\n", c.rawname)
        });
        changed()
            .map(|c| {
                // In words: `rolled back`, where the JSON's value is `rolled-back`.
                let action = c.action.as_str().replace('-', " ");
                match (&c.from, &c.to) {
                    (Some(from), Some(to)) if from != to => {
                        format!("{action} {} {from} -> {to}\n", c.rawname)
                    }
                    (_, Some(version)) | (Some(version), None) => {
                        format!("{action} {} {version}\n", c.rawname)
                    }
                    (None, None) => format!("{action} {}\n", c.rawname),
                }
            })
            .chain(grants)
            .collect()
    })
}

/// Whether `request` is one an administrator grants: a directory, or an application's
/// capability that needs a grant (one that does not is linked for any module), or one
/// this host does not give (kept for the application that does).
fn granted_now(request: &Request) -> bool {
    match request {
        Request::Directory { granted, .. } => *granted,
        Request::Import {
            needs_grant,
            provided,
            granted,
            ..
        } => (*needs_grant || !*provided) && *granted,
    }
}
