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
}
