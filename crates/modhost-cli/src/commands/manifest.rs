//! `manifest`: a module.xml as modhost reads it, and its component's imports.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use modhost::Manifest;

use crate::Context;
use crate::escape::escape;

/// Arguments of `manifest`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A module.xml, a module directory, or a package (`.tgz` or `.zip`).
    path: PathBuf,
}

/// Prints the module.xml, and for a package or module directory what its component
/// imports (read without compiling it); exits non-zero when this host would refuse it.
pub fn run(ctx: &Context, args: Args) -> Result<ExitCode> {
    let manifest = modhost::read_manifest(&args.path)?;
    // Checked against this host's imports: the root's when there is one (its
    // application may give more), else a throwaway one's.
    let component = ctx.open_or_scratch()?.component_imports(&args.path)?;
    let mut document = serde_json::to_value(&manifest)?;
    if let (Some(component), Some(object)) = (&component, document.as_object_mut()) {
        object.insert("imports".into(), component.imports.clone().into());
        if let Some(refused) = &component.refused {
            object.insert("refused".into(), refused.clone().into());
        }
    }
    // A module's source directory before its first build: described, and said unbuilt.
    let unbuilt = args.path.is_dir()
        && std::fs::symlink_metadata(args.path.join(&manifest.component)).is_err();
    ctx.out.result(&document, || {
        let mut text = summary(&manifest);
        if unbuilt {
            let _ = writeln!(
                text,
                "  {:<12} `{}` is not built yet: installing the directory needs it",
                "note",
                escape(&manifest.component)
            );
        }
        if let Some(component) = &component {
            for import in &component.imports {
                let _ = writeln!(text, "  {:<12} {}", "import", escape(import));
            }
            if let Some(refused) = &component.refused {
                let _ = writeln!(text, "cannot be installed here: {}", escape(refused));
            }
        }
        text
    })?;
    let refused = component.is_some_and(|c| c.refused.is_some());
    Ok(if refused {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
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
    if let Some(description) = described(m) {
        line("description", &description);
    }
    line("category", &m.category);
    line("repo", &m.repo);
    if let Some(protected) = protection(m) {
        line("protected", &protected);
    }
    details(m, &mut line);
    // What it asks of the host, each granted only by an administrator (`info` says which
    // are, once it is installed).
    for capability in &m.capabilities {
        line("asks for", &capability.describe());
    }
    for table in &m.database.tables {
        // The primary key is said by its columns: "0 keys" of a table keyed on three
        // columns would read as a table with no key at all.
        let primary: Vec<&str> = table
            .fields
            .iter()
            .filter(|f| f.primarykey)
            .map(|f| f.name.as_str())
            .collect();
        let primary = match primary.is_empty() {
            true => String::new(),
            false => format!(", primary key ({})", primary.join(", ")),
        };
        line(
            "table",
            &format!(
                "{} ({}{primary}, {})",
                table.name,
                counted(table.fields.len(), "field"),
                counted(table.keys.len(), "other key")
            ),
        );
    }
    for warning in &m.warnings {
        line("warning", &warning.to_string());
    }
    text
}

/// `n` and `noun`, plural unless one.
fn counted(n: usize, noun: &str) -> String {
    match n {
        1 => format!("1 {noun}"),
        _ => format!("{n} {noun}s"),
    }
}

/// What `m` says of itself beyond its name and category, one `line(label, value)` each:
/// who publishes it, what it needs, what it serves, and its menu.
pub(crate) fn details(m: &Manifest, line: &mut dyn FnMut(&str, &str)) {
    for (label, value) in [
        ("attention", &m.attention),
        ("publisher", &m.publisher),
        ("license", &m.license),
        ("more info", &m.more_info),
        ("type", &m.modtype),
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
        .chain(d.php.components.iter().map(|alternatives| {
            let names: Vec<String> = alternatives.iter().map(ToString::to_string).collect();
            format!("php component {}", names.join(" || "))
        }))
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
                "{} → {} (pri {})",
                hook.point(),
                hook.handler,
                hook.priority
            ),
        );
    }
    for fix in &m.bugfix {
        // On one line, as the description: its text may be wrapped as its file was.
        let text = fix.text.split_whitespace().collect::<Vec<_>>().join(" ");
        match fix.id.as_deref() {
            Some(id) if text.is_empty() || text == id => line("fixes", id),
            Some(id) => line("fixes", &format!("{id}: {text}")),
            None => line("fixes", &text),
        }
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
}

/// `m`'s description on one line, shortened: a module.xml's may run to paragraphs.
pub(crate) fn described(m: &Manifest) -> Option<String> {
    // On one line: a module.xml's description is often wrapped as its file was.
    let words = m.description.as_deref()?.split_whitespace();
    let whole = words.collect::<Vec<_>>().join(" ");
    let shown: String = whole.chars().take(160).collect();
    match shown.len() < whole.len() {
        true => Some(format!("{shown}…")),
        false => (!shown.is_empty()).then_some(shown),
    }
}

/// What `m`'s module.xml forbids (`<candisable>no`, `<canuninstall>no`), as FreePBX's
/// framework and core say of themselves.
pub(crate) fn protection(m: &Manifest) -> Option<String> {
    let what = match (m.candisable, m.canuninstall) {
        (true, true) => return None,
        (false, true) => "cannot be disabled",
        (true, false) => "cannot be uninstalled",
        (false, false) => "cannot be disabled or uninstalled",
    };
    Some(format!("{what}, its module.xml says (--force overrides)"))
}
