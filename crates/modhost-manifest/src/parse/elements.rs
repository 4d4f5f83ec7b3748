//! Which elements of `<module>` modhost reads, how often each may occur, and what is kept
//! of the rest: FreePBX adds elements over time, and a module using a newer one must load.

use std::collections::BTreeMap;

use super::{Parser, at};
use crate::model::*;
use crate::xml::Element;

/// Whether an element may repeat.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Occurs {
    Once,
    Many,
}
use Occurs::{Many, Once};

/// What a known element of `<module>` holds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Holds {
    /// Text only: a child element in it is unknown.
    Text,
    /// Child elements, which its own reader checks.
    Elements,
}
use Holds::{Elements, Text};

/// Elements read from `<module>`, whether each may repeat and what it holds; anything
/// else is kept in [`Manifest::unknown`].
const ELEMENTS: &[(&str, Occurs, Holds)] = &[
    ("rawname", Once, Text),
    ("repo", Once, Text),
    ("name", Once, Text),
    ("version", Once, Text),
    ("type", Once, Text),
    ("category", Once, Text),
    ("publisher", Once, Text),
    ("oldpublisher", Once, Text),
    ("description", Once, Text),
    ("changelog", Once, Text),
    ("attention", Once, Text),
    ("info", Once, Text),
    ("license", Once, Text),
    ("licenselink", Once, Text),
    ("location", Once, Text),
    ("md5sum", Once, Text),
    ("sha1", Once, Text),
    ("sha1sum", Once, Text),
    ("menuitems", Many, Elements),
    ("depends", Many, Elements),
    ("requirements", Many, Elements),
    ("supported", Once, Elements),
    ("popovers", Many, Elements),
    ("oobe", Once, Elements),
    ("commercial", Once, Elements),
    ("fileinclude", Many, Elements),
    ("console", Many, Elements),
    ("database", Many, Elements),
    ("hooks", Many, Elements),
    ("methods", Many, Elements),
    ("updateurl", Once, Text),
    ("component", Once, Text),
    ("updateservers", Many, Elements),
    ("capabilities", Many, Elements),
    ("canuninstall", Once, Text),
    ("candisable", Once, Text),
    ("more-info", Once, Text),
    ("modtype", Once, Text),
    ("bugfix", Many, Text),
];

/// How often `name` may occur and what it holds, if it is a known element.
fn known(name: &str) -> Option<(Occurs, Holds)> {
    ELEMENTS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, o, h)| (*o, *h))
}

/// `element` and everything under it, as written.
fn unknown(parent: &str, element: &Element) -> Unknown {
    let path = format!("{parent}/{}", element.name);
    Unknown {
        children: element
            .children
            .iter()
            .map(|child| unknown(&path, child))
            .collect(),
        parent: parent.to_owned(),
        name: element.name.clone(),
        attributes: element.attributes.iter().cloned().collect(),
        text: element.trimmed_text().to_owned(),
    }
}

impl Parser {
    /// Keeps the children of `<module>` modhost does not know, with a warning, checks
    /// that those holding text hold no elements, and reports one that may occur once
    /// given more often.
    pub(super) fn check_elements(&mut self, root: &Element) {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for child in &root.children {
            *counts.entry(child.name.as_str()).or_default() += 1;
            match known(&child.name) {
                None => self.keep_unknown("module", child),
                Some((_, Text)) => self.check_children("module", child, &[]),
                Some((_, Elements)) => {}
            }
        }
        for (name, count) in counts {
            if count > 1 && known(name).is_some_and(|(occurs, _)| occurs == Once) {
                self.repeated(root, name, count);
            }
        }
    }

    /// Keeps an element modhost does not understand, with a warning: FreePBX adds
    /// elements over time, and a module using a newer one must still load.
    pub(super) fn keep_unknown(&mut self, parent: &str, element: &Element) {
        let path = format!("{parent}/{}", element.name);
        self.warn(
            element.position,
            format!(
                "unknown element <{}> in <{}> is kept but not used (`{}`)",
                element.name,
                parent.rsplit('/').next().unwrap_or(parent),
                path.strip_prefix("module/").unwrap_or(&path)
            ),
        );
        self.unknown.push(unknown(parent, element));
    }

    /// Checks the children of `element` (which stands in `parent`): those named in
    /// `text` must hold text only, and any other is kept as unknown. Unknown elements
    /// are kept at every level, not only under `<module>`.
    pub(super) fn check_children(&mut self, parent: &str, element: &Element, text: &[&str]) {
        let path = format!("{parent}/{}", element.name);
        for child in &element.children {
            if text.contains(&child.name.as_str()) {
                self.check_children(&path, child, &[]);
            } else {
                self.keep_unknown(&path, child);
            }
        }
    }

    /// `root` without the empty repeats of an element that may appear once, when one of
    /// its repeats has content (bulkhandler 13.0.21 has `<description/>`, then its
    /// description): the one with content is read, and each empty one is warned about.
    /// `None` when there are none to leave out.
    pub(super) fn without_empty_repeats(&mut self, root: &Element) -> Option<Element> {
        let empty = |e: &Element| {
            e.trimmed_text().is_empty() && e.children.is_empty() && e.attributes.is_empty()
        };
        let left_out: Vec<usize> = root
            .children
            .iter()
            .enumerate()
            .filter(|(_, child)| {
                empty(child)
                    && known(&child.name).is_some_and(|(occurs, _)| occurs == Once)
                    && root.children_named(&child.name).any(|other| !empty(other))
            })
            .map(|(index, _)| index)
            .collect();
        if left_out.is_empty() {
            return None;
        }
        for &index in &left_out {
            let child = &root.children[index];
            self.warn(
                child.position,
                format!(
                    "an empty <{}/> beside another <{0}> with content is left out",
                    child.name
                ),
            );
        }
        let mut pruned = root.clone();
        let mut index = 0;
        pruned.children.retain(|_| {
            index += 1;
            !left_out.contains(&(index - 1))
        });
        Some(pruned)
    }

    /// An element that may appear once appears `count` times. Repeats with the same
    /// content as the first are a warning (old FreePBX releases repeat `<supported>` and
    /// `<publisher>`, and FreePBX loads them): the first is read. A repeat that differs is
    /// an error, since which one is meant cannot be told.
    fn repeated(&mut self, root: &Element, name: &str, count: usize) {
        let mut all = root.children_named(name);
        let Some(first) = all.next() else { return };
        let repeats: Vec<&Element> = all.collect();
        match repeats.iter().find(|repeat| !same_content(first, repeat)) {
            Some(differs) => self.problem(
                differs.position,
                format!("<{name}> appears {count} times; it may appear once"),
            ),
            None => {
                for repeat in repeats {
                    self.warn(
                        repeat.position,
                        format!(
                            "<{name}> repeats the one at {} with the same content; one is enough",
                            at(first.position)
                        ),
                    );
                }
            }
        }
    }
}

/// Whether `a` and `b` say the same: names, attributes, trimmed text and children alike.
fn same_content(a: &Element, b: &Element) -> bool {
    a.name == b.name
        && a.attributes == b.attributes
        && a.trimmed_text() == b.trimmed_text()
        && a.children.len() == b.children.len()
        && a.children
            .iter()
            .zip(&b.children)
            .all(|(x, y)| same_content(x, y))
}
