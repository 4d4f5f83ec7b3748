//! Why a module.xml could not be read, problem by problem.

use std::fmt;

use serde::Serialize;

use crate::xml::Position;

/// One problem found in a module.xml, with where it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// Where in the file the problem is.
    pub position: Position,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {}",
            self.position.line, self.position.column, self.message
        )
    }
}

/// Why a module.xml could not be read.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The file is not well-formed XML, uses a DTD or custom entities, or (read with
    /// [`Manifest::parse_bytes`]) is not UTF-8.
    #[error("{file}:{}:{}: {}", .problem.position.line, .problem.position.column, .problem.message)]
    Syntax {
        /// The file, as the caller named it.
        file: String,
        /// The syntax error.
        problem: Problem,
    },
    /// The XML is well-formed but breaks module.xml's rules; every problem is listed.
    #[error("{file} is not a valid module.xml:{}", list(.problems, .file))]
    Invalid {
        /// The file, as the caller named it.
        file: String,
        /// Every problem found.
        problems: Vec<Problem>,
    },
}

fn list(problems: &[Problem], file: &str) -> String {
    problems.iter().map(|p| format!("\n  {file}:{p}")).collect()
}
