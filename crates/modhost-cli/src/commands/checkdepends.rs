//! `checkdepends`: whether a module's `<depends>` hold on this root, as an exit code.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use modhost::Outcome;

use crate::Context;
use crate::escape::escape;

/// Arguments of `checkdepends`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// An installed module's rawname, or a package, module directory or module.xml.
    module: std::ffi::OsString,
}

/// Exit codes as `compare-versions` has them, after dpkg: 0 satisfied, 1 not satisfied,
/// 2 when the question could not be answered (no such module, an unreadable package), so
/// that a script can tell "no" from "cannot say".
pub fn run(ctx: &Context, args: Args) -> Result<ExitCode> {
    let out = &ctx.out;
    // A package is checked against the root's modules, or, with no root there, against
    // none (without making one); an installed module needs its root.
    let file = modhost::names_a_file(&args.module);
    let host = if file {
        ctx.open_or_scratch()
    } else {
        ctx.open_existing()
    };
    let checked = host.and_then(|host| {
        let manifest = match args.module.to_str() {
            Some(rawname) if !file => host.installed_manifest(rawname)?,
            _ => modhost::read_manifest(Path::new(&args.module))?,
        };
        Ok(host.check_depends(&manifest)?)
    });
    let report = match checked {
        Ok(report) => report,
        Err(error) => {
            // A bare name is a module's; a package or module directory of that name is
            // read when written as a path, which this command takes.
            let path_too = matches!(
                error.downcast_ref::<modhost::Error>(),
                Some(modhost::Error::NotInstalled(name, _)) if Path::new(name).exists()
            );
            let hint = path_too
                .then_some(
                    "to read the file or directory of that name, write it as a path: `./NAME`",
                )
                .or_else(|| crate::output::hint(&error));
            out.error_with_hint(&error, hint)?;
            return Ok(ExitCode::from(2));
        }
    };
    out.result(&report, || {
        let mut text = format!("{} {}\n", escape(&report.rawname), escape(&report.version));
        if report.checks.is_empty() {
            text.push_str("  no dependencies\n");
        }
        for check in &report.checks {
            let outcome = match check.outcome {
                Outcome::Ok => "ok",
                Outcome::Failed => "FAILED",
                Outcome::Unchecked => "unchecked",
            };
            let check = format!("{} {}: {}", check.kind, check.constraint, check.detail);
            text.push_str(&format!("  {outcome:<9} {}\n", escape(&check)));
        }
        text
    })?;
    Ok(if report.satisfied {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
