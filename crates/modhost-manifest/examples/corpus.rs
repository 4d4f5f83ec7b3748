//! Parses every module.xml in a directory and groups the refusals and warnings by
//! message: `cargo run -p modhost-manifest --example corpus -- DIR`.

use std::collections::BTreeMap;

use modhost_manifest::{Error, Manifest};

/// A message with the quoted parts (`…`, '…') and numbers blanked, so that one kind of
/// problem is counted as one group.
fn shape(message: &str) -> String {
    let mut out = String::new();
    let mut quote: Option<char> = None;
    for c in message.chars() {
        match quote {
            Some(q) if c == q => {
                out.push(c);
                quote = None;
            }
            Some(_) => {}
            None if c == '`' || c == '\'' => {
                out.push(c);
                out.push('…');
                quote = Some(c);
            }
            None if c.is_ascii_digit() => {
                if !out.ends_with('#') {
                    out.push('#');
                }
            }
            None => out.push(c),
        }
    }
    out
}

fn main() {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "/tmp/probe-pkg/real/all".into());
    let verbose = std::env::args().any(|a| a == "-v");
    let mut errors: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut warnings: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let (mut ok, mut refused, mut total) = (0, 0, 0);
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "xml"))
        .collect();
    entries.sort();
    let mut seen = std::collections::HashSet::new();
    for path in entries {
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        // The same file in many branches is counted once.
        if !seen.insert(bytes.clone()) {
            continue;
        }
        total += 1;
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("?")
            .to_owned();
        match Manifest::parse_bytes(&bytes, &name) {
            Ok(m) => {
                ok += 1;
                for w in &m.warnings {
                    warnings
                        .entry(shape(&w.message))
                        .or_default()
                        .push(format!("{name}:{w}"));
                }
            }
            Err(e) => {
                refused += 1;
                let problems = match &e {
                    Error::Syntax { problem, .. } => vec![problem.clone()],
                    Error::Invalid { problems, .. } => problems.clone(),
                };
                for p in problems {
                    errors
                        .entry(shape(&p.message))
                        .or_default()
                        .push(format!("{name}:{p}"));
                }
            }
        }
    }
    println!("{total} distinct files: {ok} parse, {refused} refused");
    for (title, groups) in [("ERRORS", &errors), ("WARNINGS", &warnings)] {
        println!("== {title}");
        let mut sorted: Vec<_> = groups.iter().collect();
        sorted.sort_by_key(|(_, v)| std::cmp::Reverse(v.len()));
        for (shape, files) in sorted {
            println!("{:5} {shape}", files.len());
            for f in files.iter().take(if verbose { 3 } else { 1 }) {
                println!("        {f}");
            }
        }
    }
}
