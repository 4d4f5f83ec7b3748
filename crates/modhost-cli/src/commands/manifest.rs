use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Result;
use modhost::Manifest;

use crate::escape::escape;
use crate::output::Output;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A module.xml, a module directory, or a package (`.tgz` or `.zip`).
    path: PathBuf,
}

pub fn run(out: &Output, args: Args) -> Result<()> {
    let manifest = modhost::read_manifest(&args.path)?;
    out.result(&manifest, || summary(&manifest))
}

fn summary(m: &Manifest) -> String {
    let mut text = format!(
        "{} {} ({})\n",
        escape(&m.name),
        escape(&m.version.to_string()),
        escape(&m.rawname)
    );
    // Each value is the module.xml's text: shown escaped.
    let mut line = |label: &str, value: &str| {
        let _ = writeln!(text, "  {label:<12} {}", escape(value));
    };
    line("category", &m.category);
    line("repo", &m.repo);
    for (label, value) in [
        ("publisher", &m.publisher),
        ("license", &m.license),
        ("updateurl", &m.updateurl),
    ] {
        if let Some(value) = value {
            line(label, value);
        }
    }
    line("component", &m.component);
    let d = &m.depends;
    let depends: Vec<String> = d
        .version
        .iter()
        .map(|r| format!("host {r}"))
        .chain(d.modules.iter().map(ToString::to_string))
        .chain(d.engines.iter().map(|e| format!("engine {e}")))
        .chain(d.php.version.iter().map(|r| format!("php {r}")))
        .chain(d.files.iter().cloned())
        .collect();
    if !depends.is_empty() {
        line("depends", &depends.join(", "));
    }
    if let Some(supported) = &m.supported {
        line("supported", &format!("{} and later", supported.version));
    }
    for method in &m.methods {
        line(
            "method",
            &format!(
                "{} → {} (pri {})",
                method.hook, method.handler, method.priority
            ),
        );
    }
    for hook in &m.hooks {
        line(
            "hook",
            &format!(
                "{}.{} → {} (pri {})",
                hook.target, hook.hook, hook.handler, hook.priority
            ),
        );
    }
    for table in &m.database.tables {
        line(
            "table",
            &format!(
                "{} ({} fields, {} keys)",
                table.name,
                table.fields.len(),
                table.keys.len()
            ),
        );
    }
    if !m.menuitems.is_empty() {
        line(
            "menu",
            &m.menuitems
                .iter()
                .map(|i| i.label.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        );
    }
    for warning in &m.warnings {
        line("warning", &warning.to_string());
    }
    text
}
