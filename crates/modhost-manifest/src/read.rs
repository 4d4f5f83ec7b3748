//! Reading a module.xml, from text or bytes, into a [`Manifest`].

use crate::{Error, Manifest, Problem, parse, xml};

impl Manifest {
    /// Parses a module.xml; `file` names it in error messages. Every problem is reported
    /// at once; warnings (unknown elements, deprecated ones) are kept in the manifest.
    pub fn parse(source: &str, file: &str) -> Result<Self, Error> {
        let mut root = xml::parse(source).map_err(|e| syntax(file, e))?;
        parse::fold_names(&mut root);
        let mut parser = parse::Parser::default();
        let manifest = parser.manifest(&root);
        parser
            .problems
            .sort_by_key(|p| (p.position.line, p.position.column));
        match manifest {
            Some(manifest) if parser.problems.is_empty() => Ok(manifest),
            _ => Err(Error::Invalid {
                file: file.to_owned(),
                problems: parser.problems,
            }),
        }
    }

    /// Parses a module.xml from its bytes, as read from a file: like [`Manifest::parse`],
    /// decoded as [`xml::decode`] reads it (UTF-8, UTF-16, or the encoding the file
    /// declares); bytes that cannot be read are an [`Error::Syntax`] at the line and
    /// column of the first, naming the encoding.
    pub fn parse_bytes(bytes: &[u8], file: &str) -> Result<Self, Error> {
        let source = xml::decode(bytes).map_err(|e| syntax(file, e))?;
        Self::parse(&source, file)
    }
}

fn syntax(file: &str, error: xml::SyntaxError) -> Error {
    Error::Syntax {
        file: file.to_owned(),
        problem: Problem {
            position: error.position,
            message: error.message,
        },
    }
}
