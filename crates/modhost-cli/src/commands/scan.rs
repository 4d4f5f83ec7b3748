use std::path::PathBuf;

use anyhow::Result;

use crate::Context;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A directory of packages and module directories.
    dir: PathBuf,
}

pub fn run(ctx: &Context, args: Args) -> Result<()> {
    let entries = ctx.open()?.scan(&args.dir)?;
    ctx.out.result(&entries, || {
        let mut text = String::new();
        for e in &entries {
            let installed = e.installed.as_deref().unwrap_or("-");
            let state = serde_json::to_value(e.available)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            text += &format!(
                "{} {} (installed: {installed}, {state})\n",
                e.rawname, e.version
            );
            if e.installable {
                text += "  can be installed\n";
            }
            if let Some(problem) = &e.problem {
                text += &format!("  cannot be installed: {problem}\n");
            }
            for unmet in &e.unmet {
                text += &format!("  cannot be installed: {unmet}\n");
            }
            if !e.exports.is_empty() {
                text += &format!("  exports: {}\n", e.exports.join(", "));
            }
        }
        text
    })
}
