//! `scan`: the newest of each module's packages and module directories in a directory,
//! described.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

use crate::Context;
use crate::escape::{escape, escape_lines, escape_path};
use crate::surface;

/// Arguments of `scan`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A directory of packages and module directories.
    dir: PathBuf,
}

/// Describes every entry of the directory, unreadable ones with their error; exits
/// non-zero when any could not be read, after reporting all of them (as `check-online`
/// does with a source that does not answer).
pub fn run(ctx: &Context, args: Args) -> Result<ExitCode> {
    let scan = ctx.open_or_scratch()?.scan(&args.dir)?;
    // One array, as before unreadable entries were reported: each unreadable one is an
    // object with `package` and `error` (and `rawname` when two packages hold one
    // module and version but differ).
    let mut document = Vec::with_capacity(scan.entries.len() + scan.unreadable.len());
    for entry in &scan.entries {
        document.push(serde_json::to_value(entry)?);
    }
    for unreadable in &scan.unreadable {
        document.push(serde_json::to_value(unreadable)?);
    }
    ctx.out.result(&document, || {
        if document.is_empty() {
            return format!(
                "no packages (*.tgz, *.tar.gz, *.zip) or module directories in `{}`\n",
                escape(&args.dir.display().to_string())
            );
        }
        let mut text = String::new();
        for e in &scan.entries {
            let installed = e.installed.as_deref().unwrap_or("-");
            let state = serde_json::to_value(e.available)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            // Named by its file: a package and a module directory of one version may
            // stand side by side.
            // A directory named `.` has no file name: it is said as given.
            let file = e
                .package
                .file_name()
                .map_or(e.package.as_path(), std::path::Path::new);
            text += &format!(
                "{} {} (installed: {}, {state}) in {}\n",
                escape(&e.rawname),
                escape(&e.version),
                escape(installed),
                escape_path(file)
            );
            if e.installable {
                text += "  can be installed\n";
            }
            if let Some(problem) = &e.problem {
                text += &format!("  cannot be installed: {}\n", escape_lines(problem));
            }
            if e.installable_with.is_empty() {
                for unmet in &e.unmet {
                    text += &format!("  cannot be installed: {}\n", escape_lines(unmet));
                }
            } else {
                text += &format!(
                    "  can be installed together with {} from this directory (name them in one \
                     `modhost install`)\n",
                    escape(&e.installable_with.join(", "))
                );
            }
            for warning in &e.warnings {
                text += &format!("  warning: module.xml:{}\n", escape_lines(warning));
            }
            if !e.imports.is_empty() {
                text += &format!("  imports: {}\n", escape(&surface::imports(&e.imports)));
            }
            if !e.exports.is_empty() {
                text += &format!("  exports: {}\n", escape(&e.exports.join(", ")));
            }
            for note in &e.notes {
                text += &format!("  note: {note}\n");
            }
        }
        // The error already names the package or the module.xml in the directory; rival
        // packages of one module share theirs, said once.
        let mut said = std::collections::BTreeSet::new();
        for unreadable in &scan.unreadable {
            if !said.insert(&unreadable.error) {
                continue;
            }
            let label = match unreadable.rawname {
                Some(_) => "ambiguous",
                None => "unreadable",
            };
            text += &format!("{label}: {}\n", escape_lines(&unreadable.error));
        }
        text
    })?;
    Ok(if scan.unreadable.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
