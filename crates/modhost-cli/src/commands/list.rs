//! `list`: the installed modules, and what a package directory offers beside them.

use std::path::PathBuf;

use anyhow::Result;
use modhost::Status;

use crate::Context;
use crate::escape::{escape, escape_path};

/// Arguments of `list`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The package directory whose modules that are not installed are listed too
    /// (default: `packages` in modhost.toml).
    #[arg(long, value_name = "DIR")]
    from: Option<PathBuf>,
}

/// Lists the modules, or says that none is installed and where packages come from.
pub fn run(ctx: &Context, args: Args) -> Result<()> {
    // What a package directory offers is listed before any root is made, as `scan`
    // lists it: against no installed module.
    let host = match args.from {
        Some(_) => ctx.open_to_compare()?,
        None => ctx.open_existing()?,
    };
    let modules = host.list_all(args.from.as_deref())?;
    ctx.out.result(&modules, || {
        if modules.is_empty() {
            let from = match args.from.as_deref().or(host.package_dir()) {
                Some(dir) => format!("the package directory `{}` offers none", escape_path(dir)),
                None => "install one with `modhost install PACKAGE`, or set `packages` in \
                         modhost.toml to list what a package directory offers"
                    .to_owned(),
            };
            return format!(
                "nothing is installed in `{}`; {from}\n",
                escape_path(ctx.root())
            );
        }
        let rows: Vec<[String; 4]> = modules
            .iter()
            .map(|m| {
                let (rawname, name, version, status, reason) = m.summary();
                let status = match reason.filter(|_| status != Status::Broken) {
                    Some(reason) => format!("{status} ({reason})"),
                    None => status.to_string(),
                };
                // Names, versions and reasons come from module.xml files and packages:
                // escaped before the columns are measured.
                [rawname, version, status.as_str(), name].map(|cell| escape(cell).into_owned())
            })
            .collect();
        // Why a module is broken names paths and digests: said whole below the table,
        // where it widens no column.
        let reasons: String = modules
            .iter()
            .filter_map(|m| {
                let (rawname, _, _, status, reason) = m.summary();
                let reason = reason.filter(|_| status == Status::Broken)?;
                Some(format!(
                    "{}: {status}: {}\n",
                    escape(rawname),
                    escape(reason)
                ))
            })
            .collect();
        let table = table(["RAWNAME", "VERSION", "STATUS", "NAME"], &rows);
        match reasons.is_empty() {
            true => table,
            false => format!("{table}\n{reasons}"),
        }
    })
}

/// Left-aligned columns, as wide as their widest cell.
pub(crate) fn table<const N: usize>(header: [&str; N], rows: &[[String; N]]) -> String {
    let mut widths = header.map(str::len);
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut text = cells
            .iter()
            .zip(widths)
            // Padded by hand: a format width past 65535 panics, and a cell is a module's
            // own text, as long as its author likes.
            .map(|(cell, width)| {
                let pad = width.saturating_sub(cell.chars().count());
                format!("{cell}{}", " ".repeat(pad))
            })
            .collect::<Vec<_>>()
            .join("  ");
        text.truncate(text.trim_end().len());
        text + "\n"
    };
    let mut text = line(header.to_vec());
    for row in rows {
        text += &line(row.iter().map(String::as_str).collect());
    }
    text
}

#[cfg(test)]
mod tests {
    use super::table;

    #[test]
    fn a_cell_longer_than_any_format_width_is_laid_out_not_a_panic() {
        let long = "n".repeat(70_000);
        let text = table(
            ["RAWNAME", "NAME"],
            &[
                [long.clone(), "x".to_owned()],
                ["core".to_owned(), "Core".to_owned()],
            ],
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[1], format!("{long}  x"));
        assert_eq!(lines[2], format!("core{}  Core", " ".repeat(70_000 - 4)));
    }
}
