//! Commands about one installed module: info, kv, rows, reversedepends, grant, revoke.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::Result;
use modhost::{Described, SqlValue};

use crate::Context;
use crate::escape::escape;
use crate::surface;

/// A module's rawname.
#[derive(Debug, clap::Args)]
pub struct Rawname {
    /// The module's rawname.
    rawname: String,
}

/// A module and one of its tables.
#[derive(Debug, clap::Args)]
pub struct TableArgs {
    /// The module's rawname.
    rawname: String,
    /// A table the module owns.
    table: String,
}

/// `info`'s arguments.
#[derive(Debug, clap::Args)]
pub struct InfoArgs {
    /// The module's rawname.
    rawname: String,
    /// For a module not installed: the package directory to look in (default: the
    /// configured one).
    #[arg(long)]
    from: Option<std::path::PathBuf>,
}

/// `info`: an installed module in full, or what a package or the package directory
/// would install.
pub fn info(ctx: &Context, args: InfoArgs) -> Result<()> {
    // A package, or a module of a package directory given, is described before any root
    // is made.
    let host = match args.from.is_some() || modhost::names_a_file(args.rawname.as_ref()) {
        true => ctx.open_to_compare()?,
        false => ctx.open_existing()?,
    };
    let info = match host.describe(&args.rawname, args.from.as_deref())? {
        Described::Installed(info) => info,
        Described::Offered(offered) => {
            return ctx.out.result(&offered, || {
                let (module, component) = (&offered.module, &offered.component);
                let manifest = &offered.manifest;
                let mut text = format!(
                    "{} {} ({})\n",
                    escape(&module.name),
                    escape(&module.version),
                    escape(&module.rawname),
                );
                // As an installed module's: most values come from its module.xml.
                let mut line = |label: &str, value: &str| {
                    let _ = writeln!(text, "  {label:<12} {}", escape(value));
                };
                line("status", &format!("{} ({})", module.status, module.reason));
                if let Some(description) = super::manifest::described(manifest) {
                    line("description", &description);
                }
                line("category", &manifest.category);
                if let Some(protected) = super::manifest::protection(manifest) {
                    line("protected", &protected);
                }
                super::manifest::details(manifest, &mut line);
                let tables: Vec<&str> = manifest
                    .database
                    .tables
                    .iter()
                    .map(|t| t.name.as_str())
                    .collect();
                if !tables.is_empty() {
                    line("tables", &tables.join(", "));
                }
                for unmet in &offered.unmet {
                    line("unmet", unmet);
                }
                if let Some(blocked) = &offered.blocked {
                    line("blocked", blocked);
                }
                if !component.imports.is_empty() {
                    line("imports", &surface::imports(&component.imports));
                }
                if let Some(refused) = &component.refused {
                    line("refused", refused);
                }
                text
            });
        }
    };
    ctx.out.result(&info, || {
        let r = &info.record;
        let mut text = format!(
            "{} {} ({})\n",
            escape(&r.name),
            escape(&r.version),
            escape(&r.rawname)
        );
        // Each value is shown escaped: most come from the module's module.xml.
        let mut line = |label: &str, value: &str| {
            let _ = writeln!(text, "  {label:<12} {}", escape(value));
        };
        match &r.reason {
            Some(reason) => line("status", &format!("{} ({reason})", r.status)),
            None => line("status", r.status.as_str()),
        }
        if let Some(description) = super::manifest::described(&info.manifest) {
            line("description", &description);
        }
        line("category", &info.manifest.category);
        if let Some(protected) = super::manifest::protection(&info.manifest) {
            line("protected", &protected);
        }
        super::manifest::details(&info.manifest, &mut line);
        match (&info.backup_version, &info.backup_unusable) {
            (Some(backup), Some(problem)) => {
                line("rollback to", &format!("{backup}, which cannot be used: {problem}"))
            }
            (Some(backup), None) => line("rollback to", backup),
            _ => {}
        }
        if !info.tables.is_empty() {
            line("tables", &info.tables.join(", "));
        }
        let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
        line(
            "state",
            &format!(
                "{:.1} MiB of its {:.1} MiB quota (key-value store and tables)",
                mib(info.state_used),
                mib(info.state_quota)
            ),
        );
        line(
            "data",
            &format!(
                "{:.1} MiB of its {:.1} MiB quota, {} of {} files and directories (/data and the directories it may write)",
                mib(info.data_used),
                mib(info.data_quota),
                info.data_entries,
                info.data_entry_quota
            ),
        );
        if !info.dependents.is_empty() {
            line("required by", &info.dependents.join(", "));
        }
        for unmet in &info.unmet {
            line("unmet", unmet);
        }
        let channels = info.manifest.updateurl.is_some() || !info.manifest.updateservers.is_empty();
        let attach = format!(
            "`modhost source attach {} SOURCE` takes its updates from a source",
            info.manifest.rawname
        );
        match &info.source {
            Some(source) => line("source", source),
            None if channels => line(
                "source",
                &format!(
                    "none: installed from a file; its module.xml's channels update it, and {attach}"
                ),
            ),
            None => line(
                "source",
                &format!(
                    "none: installed from a file, and its module.xml names no update channel; {attach}"
                ),
            ),
        }
        if !info.imports.is_empty() {
            line("imports", &surface::imports(&info.imports));
        }
        if !info.exports.is_empty() {
            line("exports", &info.exports.join(", "));
        }
        if let Some(refused) = &info.refused {
            line("refused", &format!("this host would not run it: {refused}"));
        }
        for note in &info.notes {
            line("note", note);
        }
        for capability in &info.manifest.capabilities {
            let granted = info.grants.iter().find(|g| g.path == capability.grant_key());
            let state = match granted {
                Some(g) if g.missing => {
                    "granted, but gone since: the module runs without it; recreate it, or \
                     `modhost revoke` the module's grants"
                }
                Some(g) if g.read_only && !capability.read_only() => "granted read-only",
                Some(_) => "granted",
                None => "not granted",
            };
            line("requests", &format!("{} ({state})", capability.describe()));
        }
        line("files", &format!("modules/{}/{}", r.rawname, r.module_dir));
        line("data", &format!("data/{}/{}", r.rawname, r.data_dir));
        text
    })
}

/// `kv`: a module's key-value store.
pub fn kv(ctx: &Context, args: Rawname) -> Result<()> {
    let entries = ctx.open_existing()?.kv_entries(&args.rawname)?;
    let document: BTreeMap<_, _> = entries.iter().cloned().collect();
    ctx.out.result(&document, || {
        entries.iter().map(|(k, v)| kv_line(k, v)).collect()
    })
}

/// One entry of `kv`'s text: `key=value`, escaped, with a `=` in the key written `\=`, so
/// that the first bare `=` parts key from value: `a=b` holding `c` and `a` holding `b=c`
/// are told apart.
fn kv_line(key: &str, value: &str) -> String {
    let escaped = escape(key);
    let mut shown = String::with_capacity(escaped.len());
    let mut chars = escaped.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '=' => shown.push_str("\\="),
            // A backslash `escape` left single, before a `=` or the separator, is
            // doubled: `a\` holding `=c` is not `a=` holding `c`.
            '\\' if matches!(chars.peek(), None | Some('=')) => shown.push_str("\\\\"),
            c => shown.push(c),
        }
    }
    format!("{shown}={}\n", escape(value))
}

/// `rows`: the rows of one of a module's tables.
pub fn rows(ctx: &Context, args: TableArgs) -> Result<()> {
    let rows = ctx
        .open_existing()?
        .table_rows(&args.rawname, &args.table)?;
    ctx.out.result(&rows, || {
        // Tabs separate the cells, newlines the rows: inside a cell both are escaped.
        let columns: Vec<_> = rows.columns.iter().map(|c| escape(c)).collect();
        let mut text = columns.join("\t") + "\n";
        for row in &rows.rows {
            let cells: Vec<String> = row
                .iter()
                .map(|v| match v {
                    SqlValue::Null => "NULL".to_owned(),
                    SqlValue::Integer(i) => i.to_string(),
                    SqlValue::Real(r) => r.to_string(),
                    SqlValue::Text(t) => escape(t).into_owned(),
                    SqlValue::Blob(b) => format!("<{} bytes>", b.len()),
                })
                .collect();
            text += &(cells.join("\t") + "\n");
        }
        text
    })
}

/// `reversedepends`: the installed modules that depend on a module.
pub fn reversedepends(ctx: &Context, args: Rawname) -> Result<()> {
    let dependents = ctx.open_existing()?.reverse_dependencies(&args.rawname)?;
    ctx.out.result(&dependents, || {
        dependents
            .iter()
            .map(|d| format!("{}\n", escape(d)))
            .collect()
    })
}

/// `grant`: gives a module what its `<capabilities>` ask for.
pub fn grant(ctx: &Context, args: Rawname) -> Result<()> {
    let granted = ctx.open_to_change()?.grant(&args.rawname)?;
    ctx.out.result(&granted, || {
        let what = match granted.len() {
            0 => "nothing (it asks for no capability)".to_owned(),
            1 => "1 capability".to_owned(),
            n => format!("{n} capabilities"),
        };
        format!("granted {what} to {}\n", escape(&args.rawname))
    })
}

/// `revoke`: takes back what was granted to a module.
pub fn revoke(ctx: &Context, args: Rawname) -> Result<()> {
    ctx.open_to_change()?.revoke(&args.rawname)?;
    let document = serde_json::json!({ "rawname": args.rawname, "revoked": true });
    ctx.out.result(&document, || {
        format!("revoked every grant of {}\n", escape(&args.rawname))
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_key_holding_an_equals_sign_is_told_from_a_value_holding_one() {
        use super::kv_line;
        assert_eq!(kv_line("a=b", "c"), "a\\=b=c\n");
        assert_eq!(kv_line("a", "b=c"), "a=b=c\n");
        assert_eq!(kv_line("a\\", "=c"), "a\\\\==c\n");
        assert_eq!(kv_line("a=", "c"), "a\\==c\n");
    }
}
