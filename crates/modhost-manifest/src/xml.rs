//! A small element tree over quick-xml that remembers where each element starts.
//!
//! module.xml files are tiny, so a tree is simpler than streaming and lets validation
//! report every problem with its line and column. Documents with a DTD or with entities
//! other than XML's five predefined ones are refused: that closes off entity bombs.

use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;

/// Deeper nesting than this is refused; module.xml needs four or five levels.
const MAX_DEPTH: usize = 32;
/// More elements than this are refused; a large core module.xml has a few hundred.
const MAX_ELEMENTS: usize = 20_000;

/// A line and column, both counted from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Position {
    /// Line number, from 1.
    pub line: usize,
    /// Column number in characters, from 1.
    pub column: usize,
}

/// Turns offsets into positions, walking forward from the last one, so that positioning
/// every element of a document costs one pass over it rather than one per element.
struct Locator<'a> {
    source: &'a str,
    offset: usize,
    position: Position,
}

impl<'a> Locator<'a> {
    fn new(source: &'a str) -> Self {
        Locator {
            source,
            offset: 0,
            position: Position { line: 1, column: 1 },
        }
    }

    fn at(&mut self, offset: u64) -> Position {
        let offset = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(self.source.len());
        match self.source.get(self.offset..offset) {
            Some(between) => {
                match between.rfind('\n') {
                    Some(last) => {
                        self.position.line += between.matches('\n').count();
                        self.position.column = between[last + 1..].chars().count() + 1;
                    }
                    None => self.position.column += between.chars().count(),
                }
                self.offset = offset;
                self.position
            }
            None => Position::at(self.source, offset),
        }
    }
}

impl Position {
    fn at(source: &str, offset: usize) -> Self {
        let before = source.get(..offset.min(source.len())).unwrap_or(source);
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Position {
            line,
            column: before[line_start..].chars().count() + 1,
        }
    }
}

/// One element: its name, attributes, text and children.
#[derive(Debug, Clone, Default)]
pub struct Element {
    /// The element's tag name.
    pub name: String,
    /// Attributes in document order.
    pub attributes: Vec<(String, String)>,
    /// The element's own text (not its children's), entities resolved.
    pub text: String,
    /// Child elements in document order.
    pub children: Vec<Element>,
    /// Where the element's start tag begins.
    pub position: Position,
}

impl Element {
    /// The value of attribute `name`, if present.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The children named `name`.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |child| child.name == name)
    }

    /// The first child named `name`.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|child| child.name == name)
    }

    /// The element's text with surrounding white space removed.
    pub fn trimmed_text(&self) -> &str {
        self.text.trim()
    }
}

/// A syntax error, with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// Where the problem was found.
    pub position: Position,
    /// What is wrong.
    pub message: String,
}

/// Parses `source` into its root element.
pub fn parse(source: &str) -> Result<Element, SyntaxError> {
    if source.len() > crate::MAX_SIZE {
        return Err(SyntaxError {
            position: Position { line: 1, column: 1 },
            message: format!("the document is larger than {} bytes", crate::MAX_SIZE),
        });
    }
    let mut reader = Reader::from_str(source);
    reader.config_mut().trim_text(false);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut elements = 0usize;
    let mut locator = Locator::new(source);
    let fail = |offset: u64, message: String| SyntaxError {
        position: Position::at(source, usize::try_from(offset).unwrap_or(usize::MAX)),
        message,
    };
    loop {
        let offset = reader.buffer_position();
        let event = reader
            .read_event()
            .map_err(|e| fail(reader.error_position(), e.to_string()))?;
        match event {
            Event::Start(start) | Event::Empty(start) if root.is_some() => {
                let name = start.name().as_ref().to_owned();
                return Err(fail(
                    offset,
                    format!("<{name}> after the root element has ended"),
                ));
            }
            Event::Start(start) => {
                elements += 1;
                if elements > MAX_ELEMENTS {
                    return Err(fail(offset, format!("more than {MAX_ELEMENTS} elements")));
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(fail(
                        offset,
                        format!("elements nested deeper than {MAX_DEPTH}"),
                    ));
                }
                stack.push(element(&mut locator, &start, offset).map_err(|m| fail(offset, m))?);
            }
            Event::Empty(start) => {
                elements += 1;
                if elements > MAX_ELEMENTS {
                    return Err(fail(offset, format!("more than {MAX_ELEMENTS} elements")));
                }
                let done = element(&mut locator, &start, offset).map_err(|m| fail(offset, m))?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(done),
                    None => root = Some(done),
                }
            }
            Event::End(_) => {
                // quick-xml has already checked that the end tag matches.
                if let Some(done) = stack.pop() {
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(done),
                        None => root = Some(done),
                    }
                }
            }
            Event::Text(text) => {
                let content = text.xml10_content();
                match stack.last_mut() {
                    Some(current) => current.text.push_str(&content),
                    None if content.trim().is_empty() => {}
                    None => return Err(fail(offset, "text outside the root element".into())),
                }
            }
            Event::CData(data) => {
                let content = data.into_inner();
                if let Some(current) = stack.last_mut() {
                    current.text.push_str(&content);
                }
            }
            Event::GeneralRef(reference) => {
                let resolved = match reference.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    Ok(None) => {
                        let name = reference.xml10_content();
                        resolve_predefined_entity(&name)
                            .map(str::to_owned)
                            .ok_or_else(|| {
                                fail(offset, format!("unknown entity `&{name};` (custom entities are not allowed)"))
                            })?
                    }
                    Err(e) => return Err(fail(offset, e.to_string())),
                };
                if let Some(current) = stack.last_mut() {
                    current.text.push_str(&resolved);
                }
            }
            Event::DocType(_) => {
                return Err(fail(
                    offset,
                    "a DOCTYPE is not allowed in module.xml".into(),
                ));
            }
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) => {}
            Event::Eof => break,
        }
    }
    if let Some(open) = stack.last() {
        return Err(SyntaxError {
            position: open.position,
            message: format!("<{}> is never closed", open.name),
        });
    }
    root.ok_or_else(|| fail(0, "the document has no root element".into()))
}

fn element(
    locator: &mut Locator<'_>,
    start: &BytesStart<'_>,
    offset: u64,
) -> Result<Element, String> {
    let name = start.name().as_ref().to_owned();
    let mut attributes = Vec::new();
    for attribute in start.attributes() {
        let attribute = attribute.map_err(|e| format!("bad attribute in <{name}>: {e}"))?;
        let key = attribute.key.as_ref().to_owned();
        let value = attribute
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map_err(|e| format!("bad value for attribute `{key}` of <{name}>: {e}"))?
            .into_owned();
        attributes.push((key, value));
    }
    Ok(Element {
        name,
        attributes,
        text: String::new(),
        children: Vec::new(),
        position: locator.at(offset),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_predefined_entities_and_keeps_positions() {
        let doc = "<module>\n  <name>A &amp; B &#65;</name>\n  <info/>\n</module>";
        let root = parse(doc).map_err(|e| e.message);
        let Ok(root) = root else { panic!("{root:?}") };
        let name = root.child("name").map(Element::trimmed_text);
        assert_eq!(name, Some("A & B A"));
        assert_eq!(
            root.child("name").map(|e| e.position),
            Some(Position { line: 2, column: 3 })
        );
        assert!(root.child("info").is_some());
    }

    #[test]
    fn walking_forward_finds_the_same_positions_as_counting_from_the_start() {
        let doc = "<module>\n  <né a=\"é\"/><b/>\n\n\t<c>ü</c><d/>\n</module>";
        let Ok(root) = parse(doc).map_err(|e| e.message) else {
            panic!("parses")
        };
        let positions: Vec<Position> = root.children.iter().map(|e| e.position).collect();
        let expected: Vec<Position> = ["<né", "<b/>", "<c>", "<d/>"]
            .iter()
            .filter_map(|tag| doc.find(tag))
            .map(|offset| Position::at(doc, offset))
            .collect();
        assert_eq!(positions, expected);
        assert_eq!(
            positions[3],
            Position {
                line: 4,
                column: 10
            }
        );
    }

    #[test]
    fn refuses_doctype_and_custom_entities() {
        let bomb = "<!DOCTYPE m [<!ENTITY a \"aaaa\">]><module>&a;</module>";
        let err = parse(bomb).err().map(|e| e.message);
        assert!(err.is_some_and(|m| m.contains("DOCTYPE")));
        let custom = "<module><name>&lol;</name></module>";
        let err = parse(custom).err().map(|e| e.message);
        assert!(err.is_some_and(|m| m.contains("&lol;")));
    }

    #[test]
    fn refuses_an_oversized_document_before_reading_it() {
        let big = format!("<module>{}</module>", " ".repeat(crate::MAX_SIZE));
        let err = parse(&big).err().map(|e| e.message);
        assert!(err.is_some_and(|m| m.contains("larger than")));
    }

    #[test]
    fn reports_unclosed_and_mismatched_tags_with_position() {
        let err = parse("<module>\n<name>x</nam>\n</module>").err();
        assert_eq!(err.map(|e| e.position.line), Some(2));
        assert!(parse("<module><name>x</name>").is_err());
    }
}
