//! A module version: its strict grammar, canonical form and FreePBX order.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::stage::NUMBER_RANK;
use crate::{Error, Stage};

/// The longest version string accepted; real versions are far shorter.
const MAX_LEN: usize = 64;

/// A module version on FreePBX's order.
///
/// Equality and order follow the canonical form, so `1.0b1 == 1.0beta1`; [`fmt::Display`]
/// shows the text as the module wrote it and [`Version::canonical`] the canonical form.
#[derive(Debug, Clone)]
pub struct Version {
    text: String,
    numbers: Vec<u64>,
    stage: Option<(Stage, Vec<u64>)>,
}

impl Version {
    /// Parses `text` on the strict grammar `N(sep N)*[sep? WORD [sep? N(.N)*]]`, where
    /// `sep` is one of `. - _ +` and `WORD` one of `dev alpha a beta b rc pl p` in any
    /// case. PHP's `version_compare` reads `-`, `_` and `+` as `.`, so `1.0-1` is `1.0.1`
    /// (and its canonical form). Old FreePBX releases number within a release word
    /// (`2.9.0alpha1.6`), hence the dotted numbers after it.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let fail = |reason| Error::Version {
            text: text.to_owned(),
            reason,
        };
        if text.is_empty() {
            return Err(fail("it is empty"));
        }
        if text.len() > MAX_LEN {
            // Quoted in part: a message never repeats a document's kilobytes of text.
            return Err(Error::Version {
                text: format!("{}…", &text[..text.floor_char_boundary(MAX_LEN / 2)]),
                reason: "it is longer than 64 characters",
            });
        }
        let bytes = text.as_bytes();
        let mut pos = 0;
        if !bytes.first().is_some_and(u8::is_ascii_digit) {
            return Err(fail("expected a number"));
        }
        let numbers = dotted_numbers(text, &mut pos, is_separator)
            .ok_or_else(|| fail("a number is too large"))?;
        if pos == bytes.len() {
            return Ok(Version {
                text: text.to_owned(),
                numbers,
                stage: None,
            });
        }
        if is_separator(bytes[pos]) {
            pos += 1;
        }
        let letters = take_while(bytes, pos, |b| b.is_ascii_alphabetic());
        if letters == 0 {
            return Err(fail(
                "expected a number or a release word (dev, alpha, beta, rc, pl)",
            ));
        }
        let stage = Stage::parse(&text[pos..pos + letters]).ok_or_else(|| {
            fail("unknown release word (expected dev, alpha, a, beta, b, rc, pl or p)")
        })?;
        pos += letters;
        if pos < bytes.len() && is_separator(bytes[pos]) {
            pos += 1;
        }
        let stage_numbers = if bytes.get(pos).is_some_and(u8::is_ascii_digit) {
            dotted_numbers(text, &mut pos, |b| b == b'.')
                .ok_or_else(|| fail("a number is too large"))?
        } else {
            Vec::new()
        };
        if pos != bytes.len() {
            return Err(fail("unexpected text after the release word"));
        }
        if stage_numbers.is_empty() && is_separator(bytes[pos - 1]) {
            return Err(fail("it ends with a separator"));
        }
        Ok(Version {
            text: text.to_owned(),
            numbers,
            stage: Some((stage, stage_numbers)),
        })
    }

    /// The text as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The canonical form: numbers without leading zeros, the release word spelled in
    /// full and lower case, with no separator before it or its number (`1.0-RC02` → `1.0rc2`).
    pub fn canonical(&self) -> String {
        let mut out = self
            .numbers
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(".");
        if let Some((stage, numbers)) = &self.stage {
            out.push_str(stage.as_str());
            out.push_str(
                &numbers
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join("."),
            );
        }
        out
    }

    /// The comparison keys, one per part; see [`Key`].
    fn keys(&self) -> impl Iterator<Item = Key> + '_ {
        let numbers = self.numbers.iter().map(|&n| Key::Number(n));
        let stage = self.stage.iter().flat_map(|(stage, numbers)| {
            std::iter::once(Key::Word(stage.rank())).chain(numbers.iter().map(|&n| Key::Number(n)))
        });
        numbers.chain(stage)
    }
}

/// One part of a version, ordered as PHP's `version_compare` orders them, with `End`
/// standing for "this side ran out": less than any number, ranked like a number against
/// a word. No two different kinds ever compare equal, which makes the order total.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Number(u64),
    Word(u8),
    End,
}

impl Key {
    fn sort_key(self) -> (u8, u8, u64) {
        match self {
            Key::Word(rank) => (rank, 0, 0),
            Key::End => (NUMBER_RANK, 0, 0),
            Key::Number(n) => (NUMBER_RANK, 1, n),
        }
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        let mut a = self.keys();
        let mut b = other.keys();
        loop {
            match (a.next(), b.next()) {
                (None, None) => return Ordering::Equal,
                (x, y) => {
                    let x = x.unwrap_or(Key::End).sort_key();
                    let y = y.unwrap_or(Key::End).sort_key();
                    match x.cmp(&y) {
                        Ordering::Equal => continue,
                        unequal => return unequal,
                    }
                }
            }
        }
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version {}

impl Hash for Version {
    fn hash<H: Hasher>(&self, state: &mut H) {
        for key in self.keys() {
            key.sort_key().hash(state);
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for Version {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Version::parse(s)
    }
}

impl Serialize for Version {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Version::parse(&text).map_err(serde::de::Error::custom)
    }
}

fn take_while(bytes: &[u8], start: usize, pred: impl Fn(&u8) -> bool) -> usize {
    bytes[start..].iter().take_while(|b| pred(b)).count()
}

fn is_separator(b: u8) -> bool {
    matches!(b, b'.' | b'-' | b'_' | b'+')
}

/// Reads `N(sep N)*` from `pos` (which must be at a digit), where `sep` is a byte for
/// which `separator` holds, leaving `pos` after the last number; `None` when a number
/// overflows.
fn dotted_numbers(text: &str, pos: &mut usize, separator: fn(u8) -> bool) -> Option<Vec<u64>> {
    let bytes = text.as_bytes();
    let mut numbers = Vec::new();
    loop {
        let digits = take_while(bytes, *pos, |b| b.is_ascii_digit());
        numbers.push(text[*pos..*pos + digits].parse().ok()?);
        *pos += digits;
        match bytes.get(*pos) {
            Some(&b) if separator(b) && bytes.get(*pos + 1).is_some_and(u8::is_ascii_digit) => {
                *pos += 1;
            }
            _ => return Some(numbers),
        }
    }
}
