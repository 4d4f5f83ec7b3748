//! What a component reaches and offers, as `info` and `scan` show it: its imports grouped
//! by package, its exports, and notes on the ones a newcomer would wonder about.

use std::collections::BTreeMap;

/// `imports`, one entry per package and version: `wasi:cli@0.2.9 (environment, exit)`.
pub fn imports(imports: &[String]) -> String {
    let mut packages: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    let mut plain = Vec::new();
    for name in imports {
        let (path, version) = name.split_once('@').unwrap_or((name, ""));
        match path.split_once('/') {
            Some((package, interface)) => {
                let key = if version.is_empty() {
                    package.to_owned()
                } else {
                    format!("{package}@{version}")
                };
                packages.entry(key).or_default().push(interface);
            }
            None => plain.push(name.as_str()),
        }
    }
    let mut parts: Vec<String> = packages
        .into_iter()
        .map(|(package, interfaces)| format!("{package} ({})", interfaces.join(", ")))
        .collect();
    parts.extend(plain.into_iter().map(str::to_owned));
    parts.join(", ")
}

/// What to know about `imports` and `exports` that their names do not say.
pub fn notes(imports: &[String], exports: &[String]) -> Vec<&'static str> {
    let mut notes = Vec::new();
    if imports.iter().any(|i| i.starts_with("wasi:sockets/")) {
        notes.push(
            "wasi:sockets is linked with every network switched off: a module cannot open a connection",
        );
    }
    if imports.iter().any(|i| i.starts_with("wasi:filesystem/")) {
        notes.push("its only directories are /data and those it was granted");
    }
    if exports.iter().any(|e| e == "exports.init") {
        notes.push(
            "`exports.init` is componentize-py's own: it ran once, when the component was built, to start Python; modhost never calls it",
        );
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imports_are_grouped_by_package_and_version() {
        let names: Vec<String> = [
            "wasi:cli/environment@0.2.9",
            "wasi:cli/exit@0.2.9",
            "modhost:module/kv@0.1.0",
            "wasi:io/streams@0.2.0",
            "pbx:telephony/calls@1.0.0",
            "plain",
        ]
        .map(str::to_owned)
        .to_vec();
        assert_eq!(
            imports(&names),
            "modhost:module@0.1.0 (kv), pbx:telephony@1.0.0 (calls), \
             wasi:cli@0.2.9 (environment, exit), wasi:io@0.2.0 (streams), plain"
        );
    }

    #[test]
    fn the_notes_explain_sockets_and_componentize_pys_init() {
        let imports = vec!["wasi:sockets/tcp@0.2.9".to_owned()];
        let exports = vec!["hooks.handle".to_owned(), "exports.init".to_owned()];
        let found = notes(&imports, &exports);
        assert!(found.iter().any(|n| n.contains("network switched off")));
        assert!(found.iter().any(|n| n.contains("componentize-py's own")));
        assert!(notes(&[], &["hooks.handle".to_owned()]).is_empty());
    }
}
