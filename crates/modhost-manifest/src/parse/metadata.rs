//! Who the module is and where its files and updates come from: `<repo>`, `<category>`,
//! the checksums, `<component>` and `<updateservers>`.

use super::{Parser, at};
use crate::model::*;
use crate::xml::Element;
use crate::{CATEGORIES, DEFAULT_COMPONENT, REPOS};

impl Parser {
    pub(super) fn repo(&mut self, root: &Element) -> String {
        match (self.text(root, "repo"), root.child("repo")) {
            (Some(repo), Some(element)) => {
                if !REPOS.contains(&repo.as_str()) {
                    self.warn(
                        element.position,
                        format!(
                            "unknown repo `{repo}` (expected one of {})",
                            REPOS.join(", ")
                        ),
                    );
                }
                repo
            }
            _ => "local".to_owned(),
        }
    }

    pub(super) fn category(&mut self, root: &Element) -> String {
        match (self.text(root, "category"), root.child("category")) {
            (Some(category), Some(element)) => {
                match CATEGORIES
                    .iter()
                    .find(|known| known.eq_ignore_ascii_case(&category))
                {
                    Some(known) => (*known).to_owned(),
                    None => {
                        self.warn(
                            element.position,
                            format!("unknown category `{category}` is shown as Other"),
                        );
                        "Other".to_owned()
                    }
                }
            }
            _ => "Other".to_owned(),
        }
    }

    /// The checksum written under any of `names` (spellings of one element, such as
    /// `<sha1>` and `<sha1sum>`), lower-cased. Two spellings with the same value are a
    /// warning (one is redundant); with different values they are an error, because a
    /// package cannot match both and choosing one would hide a broken file.
    ///
    /// With `placeholders`, a value that is not hexadecimal at all is a placeholder, not a
    /// checksum: real FreePBX files write `<md5sum>compatibility</md5sum>` (every firewall
    /// 16 and 17 release), `x` or `junk`, and FreePBX loads them. It is warned about and
    /// taken as absent. Hexadecimal digits of the wrong length stay an error: that is a
    /// damaged checksum no package can match.
    pub(super) fn checksum(
        &mut self,
        root: &Element,
        names: &[&str],
        hex_len: usize,
        placeholders: bool,
    ) -> Option<String> {
        let mut found: Vec<(&Element, String)> = Vec::new();
        for element in names.iter().filter_map(|name| root.child(name)) {
            let text = element.trimmed_text().to_ascii_lowercase();
            if text.is_empty() {
                continue;
            }
            if placeholders && !text.bytes().all(|b| b.is_ascii_hexdigit()) {
                self.warn(
                    element.position,
                    format!(
                        "<{}> `{}` is not a checksum ({hex_len} hexadecimal digits); it is \
                         taken as absent (FreePBX loads such files)",
                        element.name,
                        element.trimmed_text()
                    ),
                );
                continue;
            }
            found.push((element, text));
        }
        // The one written first is the reference; a later one is what gets reported.
        found.sort_by_key(|(element, _)| (element.position.line, element.position.column));
        for (element, text) in &found {
            if text.len() != hex_len || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
                self.problem(
                    element.position,
                    format!(
                        "<{}> `{text}` is not {hex_len} hexadecimal digits",
                        element.name
                    ),
                );
            }
        }
        let ((first, value), rest) = found.split_first()?;
        for (element, text) in rest {
            if text == value {
                self.warn(
                    element.position,
                    format!(
                        "<{}> repeats <{}> (at {}); one of them is enough",
                        element.name,
                        first.name,
                        at(first.position)
                    ),
                );
            } else {
                self.problem(
                    element.position,
                    format!(
                        "<{}> `{text}` differs from <{}> `{value}` (at {}); a package cannot match both",
                        element.name,
                        first.name,
                        at(first.position)
                    ),
                );
            }
        }
        Some(value.clone())
    }

    pub(super) fn component(&mut self, root: &Element) -> String {
        let position = root
            .child("component")
            .map(|e| e.position)
            .unwrap_or_default();
        let Some(component) = self.text(root, "component") else {
            if root.child("component").is_some() {
                self.problem(
                    position,
                    format!(
                        "<component> is empty: name the component, or leave the element out \
                         for `{DEFAULT_COMPONENT}`"
                    ),
                );
            }
            return DEFAULT_COMPONENT.to_owned();
        };
        let problem = if component.contains('\\') {
            Some("separates its path with `\\`: use `/`")
        } else if component.starts_with('/')
            || !component
                .split('/')
                .all(|part| !part.is_empty() && part != "." && part != "..")
        {
            Some("is not a relative path inside the package")
        } else {
            None
        };
        if let Some(problem) = problem {
            self.problem(position, format!("<component> `{component}` {problem}"));
        }
        component
    }

    pub(super) fn updateservers(&mut self, root: &Element) -> Vec<UpdateServer> {
        let mut servers = Vec::new();
        for element in root
            .children_named("updateservers")
            .flat_map(|u| u.children.iter())
        {
            if element.name != "server" {
                self.keep_unknown("module/updateservers", element);
                continue;
            }
            self.check_children("module/updateservers", element, &[]);
            let url = element.trimmed_text();
            let priority = self.integer(element, "priority", 1);
            if url.is_empty() {
                self.problem(element.position, "<server> has no URL");
                continue;
            }
            self.warn_unless_https(element.position, "<server>", url);
            servers.push(UpdateServer {
                kind: element.attribute("type").unwrap_or("extension").to_owned(),
                priority,
                name: element.attribute("name").map(str::to_owned),
                url: url.to_owned(),
                publickey: element.attribute("publickey").map(str::to_owned),
            });
        }
        servers
    }
}
