use std::fmt::Write as _;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use modhost::Manifest;

use crate::output::Output;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A module.xml, a module directory, or a package (`.tgz` or `.zip`).
    path: PathBuf,
}

/// Reads the manifest at `path`: a package, a directory holding module.xml, or the file.
pub fn load(path: &Path) -> Result<Manifest> {
    if path.is_dir() {
        return load(&path.join("module.xml"));
    }
    let is_xml = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("xml"));
    if !is_xml {
        return Ok(modhost::read_manifest(path)?);
    }
    // Read no more than the parser accepts, so a huge file is refused without being
    // loaded whole.
    let mut source = String::new();
    std::fs::File::open(path)
        .and_then(|file| {
            file.take(modhost::manifest::MAX_SIZE as u64 + 1)
                .read_to_string(&mut source)
        })
        .with_context(|| format!("cannot read `{}`", path.display()))?;
    Ok(Manifest::parse(&source, &path.display().to_string())?)
}

pub fn run(out: &Output, args: Args) -> Result<()> {
    let manifest = load(&args.path)?;
    out.result(&manifest, || summary(&manifest))
}

fn summary(m: &Manifest) -> String {
    let mut text = format!("{} {} ({})\n", m.name, m.version, m.rawname);
    let mut line = |label: &str, value: &str| {
        let _ = writeln!(text, "  {label:<12} {value}");
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
