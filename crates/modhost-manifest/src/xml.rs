//! A small element tree over quick-xml that remembers where each element starts.
//!
//! module.xml files are tiny, so a tree is simpler than streaming and lets validation
//! report every problem with its line and column. Documents with a DTD or with entities
//! other than XML's five predefined ones are refused: that closes off entity bombs. So
//! are NUL and the noncharacters, raw or as references (see `chars`).

mod chars;
mod decode;

pub use decode::{decode, decode_within};

use quick_xml::escape::{EscapeError, resolve_predefined_entity};
use quick_xml::events::attributes::AttrError;
use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;

/// Deeper nesting than this is refused; module.xml needs four or five levels.
const MAX_DEPTH: usize = 32;
/// More elements than this are refused; a large core module.xml has a few hundred.
const MAX_ELEMENTS: usize = 20_000;
/// The most attributes one element may have: FreePBX's elements have a handful, a
/// `<field>` about a dozen.
const MAX_ATTRIBUTES: usize = 64;

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
    /// The value of attribute `name`, if present, its name read in any case (as FreePBX
    /// reads them: `primaryKey`, `publicKey` and `callingMethod` are spelt many ways).
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
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

    /// Lower-cases its name and every descendant's, for documents whose readers fold
    /// case (PHP's XML parser folds element names for Joomla's updater).
    pub fn lowercase_names(&mut self) {
        self.name.make_ascii_lowercase();
        self.children.iter_mut().for_each(Element::lowercase_names);
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

fn too_large(max_size: usize) -> SyntaxError {
    SyntaxError {
        position: Position { line: 1, column: 1 },
        message: format!("the document is larger than {max_size} bytes"),
    }
}

/// How large a document [`parse_within`] reads: bytes, and elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// The most bytes.
    pub max_size: usize,
    /// The most elements.
    pub max_elements: usize,
}

/// The bounds of a module.xml: [`crate::MAX_SIZE`] bytes, 20,000 elements.
pub const MODULE_XML: Bounds = Bounds {
    max_size: crate::MAX_SIZE,
    max_elements: MAX_ELEMENTS,
};

/// Parses `source` into its root element, within the bounds of a module.xml.
pub fn parse(source: &str) -> Result<Element, SyntaxError> {
    parse_within(source, MODULE_XML)
}

/// Parses `source` into its root element: a document larger than `bounds`, in bytes or
/// in elements, is refused.
pub fn parse_within(source: &str, bounds: Bounds) -> Result<Element, SyntaxError> {
    if source.len() > bounds.max_size {
        return Err(too_large(bounds.max_size));
    }
    // A byte-order mark (Notepad writes one) is no character of the document: the reader
    // counts offsets after it, and so do the positions reported, as editors show them.
    let source = source.strip_prefix('\u{feff}').unwrap_or(source);
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
    // How far the document has been checked for characters a module.xml may not hold: each
    // event's bytes are checked once read, so that problems are found in document order.
    let mut checked = 0usize;
    loop {
        let offset = reader.buffer_position();
        let event = reader
            .read_event()
            .map_err(|e| fail(reader.error_position(), e.to_string()))?;
        let read = usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX);
        if let Some((at, c)) = source.get(checked..read).and_then(chars::first_forbidden) {
            return Err(fail((checked + at) as u64, chars::raw_message(c)));
        }
        checked = checked.max(read);
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
                if elements > bounds.max_elements {
                    return Err(fail(
                        offset,
                        format!("more than {} elements", bounds.max_elements),
                    ));
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(fail(
                        offset,
                        format!("elements nested deeper than {MAX_DEPTH}"),
                    ));
                }
                stack.push(element(&mut locator, &start, offset).map_err(|(o, m)| fail(o, m))?);
            }
            Event::Empty(start) => {
                elements += 1;
                if elements > bounds.max_elements {
                    return Err(fail(
                        offset,
                        format!("more than {} elements", bounds.max_elements),
                    ));
                }
                let done = element(&mut locator, &start, offset).map_err(|(o, m)| fail(o, m))?;
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
                    None => {
                        // Point at the text itself, not at the white space before it.
                        let start = usize::try_from(offset).unwrap_or(usize::MAX);
                        let blank = source
                            .get(start..)
                            .map_or(0, |rest| rest.len() - rest.trim_start().len());
                        return Err(fail(
                            offset.saturating_add(blank as u64),
                            "text outside the root element".into(),
                        ));
                    }
                }
            }
            Event::CData(data) => {
                // Line ends are normalised inside CDATA too (XML 1.0 §2.11): a file saved
                // with CRLF reads the same as one saved with LF.
                let content = data.xml10_content();
                if let Some(current) = stack.last_mut() {
                    current.text.push_str(&content);
                }
            }
            Event::GeneralRef(reference) => {
                let resolved = match reference.resolve_char_ref() {
                    Ok(Some(c)) if !chars::is_xml_char(c) => {
                        let name = reference.xml10_content();
                        return Err(fail(
                            offset,
                            chars::reference_message(&format!("&{name};"), c),
                        ));
                    }
                    Ok(Some(c)) => c.to_string(),
                    Ok(None) => {
                        let name = reference.xml10_content();
                        resolve_predefined_entity(&name)
                            .map(str::to_owned)
                            .ok_or_else(|| {
                                fail(offset, format!("unknown entity `&{name};` (custom entities are not allowed)"))
                            })?
                    }
                    Err(e) => {
                        let name = reference.xml10_content();
                        return Err(fail(
                            offset,
                            format!("bad character reference `&{name};`: {}", escape_message(&e)),
                        ));
                    }
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

/// The element of the start tag `start`, which begins at `offset` (its `<`). A problem
/// comes with the offset it is at, so that it is reported at its own line and column.
fn element(
    locator: &mut Locator<'_>,
    start: &BytesStart<'_>,
    offset: u64,
) -> Result<Element, (u64, String)> {
    let name = start.name().as_ref().to_owned();
    // quick-xml counts attribute positions from the tag's name, just after `<`.
    let tag = offset.saturating_add(1);
    let at = |relative: usize| tag.saturating_add(relative as u64);
    let mut attributes = Vec::new();
    for (count, attribute) in start.attributes().enumerate() {
        // Each attribute is compared with those before it (here, and by quick-xml): a
        // tag of a hundred thousand would take minutes, in every `scan` and `list`.
        if count == MAX_ATTRIBUTES {
            return Err((
                offset,
                format!("<{name}> has more than {MAX_ATTRIBUTES} attributes"),
            ));
        }
        let attribute =
            attribute.map_err(|e| attribute_error(locator.source, &name, start, tag, e))?;
        let key = attribute.key.as_ref().to_owned();
        // The value borrows from the document (read from a `&str`), so where it starts
        // is its distance from the tag; an unknown distance points at the tag.
        let value_start = (attribute.value.as_ptr() as usize)
            .checked_sub(start.as_ptr() as usize)
            .filter(|&distance| distance <= start.len())
            .map_or(offset, at);
        let value = attribute
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map_err(|e| {
                // quick-xml's ranges count from the value's start: an unknown entity's
                // is its name, after the `&`; an unterminated one's starts at the `&`.
                let within = match &e {
                    quick_xml::Error::Escape(EscapeError::UnrecognizedEntity(range, _)) => {
                        range.start.saturating_sub(1)
                    }
                    quick_xml::Error::Escape(EscapeError::UnterminatedEntity(range)) => range.start,
                    _ => 0,
                };
                (
                    value_start.saturating_add(within as u64),
                    format!(
                        "bad value for attribute `{key}` of <{name}>: {}",
                        escape_message(&e)
                    ),
                )
            })?
            .into_owned();
        // Raw control characters are refused before the tag is read; these came from
        // references, found again in the value as written to say where.
        if value.chars().any(|c| !chars::is_xml_char(c)) {
            let raw: &str = &attribute.value;
            let (within, message) = match chars::forbidden_reference(raw) {
                Some((within, reference, c)) => (within, chars::reference_message(reference, c)),
                None => (0, "a character a module.xml may not hold".to_owned()),
            };
            return Err((
                value_start.saturating_add(within as u64),
                format!("bad value for attribute `{key}` of <{name}>: {message}"),
            ));
        }
        // Attribute names are read in any case, as FreePBX reads them: `name` and `Name`
        // are one attribute, and saying it twice is as ambiguous as any repetition.
        if let Some((first, _)) = attributes
            .iter()
            .find(|(earlier, _): &&(String, String)| earlier.eq_ignore_ascii_case(&key))
        {
            return Err((
                value_start,
                format!(
                    "bad attribute in <{name}>: attribute `{key}` repeats `{first}` (attribute \
                     names are read in any case)"
                ),
            ));
        }
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

/// A quick-xml escaping error in words, without the byte ranges quick-xml puts in its
/// own messages (the caller reports the position as line and column).
fn escape_message(error: &quick_xml::Error) -> String {
    match error {
        quick_xml::Error::Escape(EscapeError::UnrecognizedEntity(_, name)) => {
            format!("unknown entity `&{name};` (custom entities are not allowed)")
        }
        quick_xml::Error::Escape(EscapeError::UnterminatedEntity(_)) => {
            "`&` starts an entity that has no closing `;`".into()
        }
        quick_xml::Error::Escape(e) => e.to_string(),
        other => other.to_string(),
    }
}

/// An attribute syntax error of `<name>` as a message and the document offset it is at;
/// `tag` is the offset of the tag's name, from which quick-xml counts its positions.
fn attribute_error(
    source: &str,
    name: &str,
    start: &BytesStart<'_>,
    tag: u64,
    error: AttrError,
) -> (u64, String) {
    let at = |relative: usize| tag.saturating_add(relative as u64);
    let (relative, what) = match error {
        AttrError::ExpectedEq(p) => (p, "an attribute name must be followed by `=`".to_owned()),
        AttrError::ExpectedValue(p) => (p, "`=` must be followed by a quoted value".to_owned()),
        AttrError::UnquotedValue(p) => (p, "an attribute value must be in quotes".to_owned()),
        AttrError::ExpectedQuote(p, quote) => (
            p,
            format!("an attribute value has no closing `{}`", char::from(quote)),
        ),
        AttrError::Duplicated(p, first) => {
            // The attribute's name is what stands at the position, up to `=` or a space.
            let key: String = start
                .get(p..)
                .unwrap_or_default()
                .chars()
                .take_while(|c| !c.is_whitespace() && *c != '=')
                .collect();
            let first = Position::at(source, usize::try_from(at(first)).unwrap_or(usize::MAX));
            (
                p,
                format!(
                    "attribute `{key}` is repeated (first at {}:{})",
                    first.line, first.column
                ),
            )
        }
    };
    (at(relative), format!("bad attribute in <{name}>: {what}"))
}

#[cfg(test)]
mod tests;
