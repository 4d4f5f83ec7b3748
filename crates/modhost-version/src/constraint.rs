//! Comparison operators and `[op] version` requirements, as FreePBX's `<depends>` writes them.

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

use crate::{Error, Version};

/// A comparison operator of FreePBX's `<depends>` and of `dpkg --compare-versions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// Less than (`lt`).
    Lt,
    /// Less than or equal (`le`).
    Le,
    /// Equal (`eq`, `=`, `==`).
    Eq,
    /// Not equal (`ne`, `!=`).
    Ne,
    /// Greater than or equal (`ge`); the default when no operator is written.
    Ge,
    /// Greater than (`gt`).
    Gt,
}

impl Op {
    /// Parses one of the operators PHP's `version_compare` knows, case-insensitively:
    /// `lt <`, `le <=`, `gt >`, `ge >=`, `eq == =`, `ne != <>`. FreePBX's `<depends>`
    /// documents the words and `== = !=`; real files also write `>=2.10.0`.
    pub fn parse(text: &str) -> Result<Self, Error> {
        match text.to_ascii_lowercase().as_str() {
            "lt" | "<" => Ok(Op::Lt),
            "le" | "<=" => Ok(Op::Le),
            "eq" | "=" | "==" => Ok(Op::Eq),
            "ne" | "!=" | "<>" => Ok(Op::Ne),
            "ge" | ">=" => Ok(Op::Ge),
            "gt" | ">" => Ok(Op::Gt),
            _ => Err(Error::Operator(text.to_owned())),
        }
    }

    /// Whether `left OP right` holds.
    pub fn holds(self, left: &Version, right: &Version) -> bool {
        match self {
            Op::Lt => left < right,
            Op::Le => left <= right,
            Op::Eq => left == right,
            Op::Ne => left != right,
            Op::Ge => left >= right,
            Op::Gt => left > right,
        }
    }

    /// The canonical spelling (`lt`, `le`, `eq`, `ne`, `ge`, `gt`).
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Lt => "lt",
            Op::Le => "le",
            Op::Eq => "eq",
            Op::Ne => "ne",
            Op::Ge => "ge",
            Op::Gt => "gt",
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Op {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Op::parse(s)
    }
}

impl Serialize for Op {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// `[op] version`: what a dependency asks of the version it depends on.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Requirement {
    /// The operator; [`Op::Ge`] when none was written.
    pub op: Op,
    /// The version on the right-hand side.
    pub version: Version,
}

impl Requirement {
    /// Parses `[op] version`, such as `ge 16.0`, `16.0`, `lt 2.0`, `ge13.0` or `>=2.10.0`.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let mut words = text.split_whitespace();
        match (words.next(), words.next(), words.next()) {
            // FreePBX also accepts the operator glued to the version (`ge13.0`, `==13.0`),
            // and real files glue PHP's (`>=2.10.0`).
            (Some(word), None, None) => match word.find(|c: char| c.is_ascii_digit()) {
                Some(start) if start > 0 => Ok(Requirement {
                    op: Op::parse(&word[..start])?,
                    version: Version::parse(&word[start..])?,
                }),
                _ => Ok(Requirement {
                    op: Op::Ge,
                    version: Version::parse(word)?,
                }),
            },
            (Some(op), Some(version), None) => Ok(Requirement {
                op: Op::parse(op)?,
                version: Version::parse(version)?,
            }),
            _ => Err(Error::Version {
                text: text.to_owned(),
                reason: "expected `[op] version`",
            }),
        }
    }

    /// Whether `version` satisfies the requirement.
    pub fn matches(&self, version: &Version) -> bool {
        self.op.holds(version, &self.version)
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.op, self.version)
    }
}
