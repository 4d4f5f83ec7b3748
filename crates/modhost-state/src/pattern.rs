//! SQLite's LIKE and GLOB matching (`patternCompare` in SQLite's `func.c`), ported to
//! run without recursion and to stop at a module statement's deadline.
//!
//! SQLite's matcher recurses at each `%` (or `*`) to try every place the rest of the
//! pattern could start; a nested wildcard's answer is final whatever it is, so only the
//! innermost wildcard ever tries another place. This port keeps that one place to try
//! instead of a call stack, so a pattern of thousands of wildcards costs no stack, and it
//! asks the [`Clock`] every few thousand steps: the work is still up to the pattern's
//! length times the string's, but it ends at the deadline.

use crate::functions::{Clock, Interrupted};

/// How one kind of pattern matches: LIKE's or GLOB's.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rules {
    /// The wildcard that matches any run of characters (`%`, `*`), or 0 for none.
    pub(crate) match_all: u32,
    /// The wildcard that matches one character (`_`, `?`), or 0 for none.
    pub(crate) match_one: u32,
    /// `[` for GLOB's character classes; 0 for LIKE.
    pub(crate) match_set: u32,
    /// Whether ASCII letters match either case (LIKE).
    pub(crate) no_case: bool,
}

/// GLOB's rules.
pub(crate) const GLOB: Rules = Rules {
    match_all: b'*' as u32,
    match_one: b'?' as u32,
    match_set: b'[' as u32,
    no_case: false,
};

/// LIKE's rules (SQLite's default, case-insensitive for ASCII).
pub(crate) const LIKE: Rules = Rules {
    match_all: b'%' as u32,
    match_one: b'_' as u32,
    match_set: 0,
    no_case: true,
};

/// SQLite's `sqlite3Utf8Trans1`: the payload bits of a leading byte from 0xc0 up.
const TRANS1: [u8; 64] = [
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
    0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x00, 0x01, 0x02, 0x03, 0x00, 0x01, 0x00, 0x00,
];

/// The byte at `i`, or the terminating 0 past the end: SQLite's strings end at a NUL.
fn at(s: &[u8], i: usize) -> u8 {
    s.get(i).copied().unwrap_or(0)
}

/// SQLite's `sqlite3Utf8Read`: the character at `*i`, moving past it. Invalid UTF-8
/// decodes as SQLite decodes it.
pub(crate) fn read(s: &[u8], i: &mut usize) -> u32 {
    let mut c = u32::from(at(s, *i));
    *i += 1;
    if c >= 0xc0 {
        c = u32::from(TRANS1[(c - 0xc0) as usize]);
        while at(s, *i) & 0xc0 == 0x80 {
            c = (c << 6).wrapping_add(u32::from(0x3f & at(s, *i)));
            *i += 1;
        }
        if c < 0x80 || (c & 0xFFFF_F800) == 0xD800 {
            c = 0xFFFD;
        }
    }
    c
}

/// SQLite's `SQLITE_SKIP_UTF8`: the position after the character at `i`.
pub(crate) fn skip(s: &[u8], i: usize) -> usize {
    let mut i = i + 1;
    if at(s, i - 1) >= 0xc0 {
        while at(s, i) & 0xc0 == 0x80 {
            i += 1;
        }
    }
    i
}

/// How a run of the pattern from one place ended.
enum Ended {
    /// The whole pattern matched (SQLITE_MATCH).
    Match,
    /// This place does not match; another may (SQLITE_NOMATCH).
    NoMatch,
    /// Nothing can match (SQLITE_NOWILDCARDMATCH).
    Never,
    /// A wildcard: the rest of the pattern is to be tried from each place it offers.
    Wildcard(Places),
}

/// Where the rest of the pattern after a wildcard may start in the string.
struct Places {
    /// How the next place is found.
    kind: Seek,
    /// Where the rest of the pattern starts.
    pattern: usize,
    /// Where the search for the next place goes on in the string.
    string: usize,
}

enum Seek {
    /// `*[…]` in GLOB: every character's place.
    Every,
    /// After the next occurrence of one of these ASCII bytes.
    After([u8; 2]),
    /// After the next occurrence of this non-ASCII character.
    AfterChar(u32),
}

impl Places {
    /// The next place to try the rest of the pattern, as `(pattern, string)`; `None`
    /// when the string is used up.
    fn next(&mut self, s: &[u8], clock: &mut Clock) -> Result<Option<(usize, usize)>, Interrupted> {
        match self.kind {
            Seek::Every => {
                if at(s, self.string) == 0 {
                    return Ok(None);
                }
                let place = self.string;
                self.string = skip(s, place);
                Ok(Some((self.pattern, place)))
            }
            Seek::After(stop) => loop {
                clock.tick()?;
                let b = at(s, self.string);
                if b == 0 {
                    return Ok(None);
                }
                self.string += 1;
                if b == stop[0] || b == stop[1] {
                    return Ok(Some((self.pattern, self.string)));
                }
            },
            Seek::AfterChar(c) => loop {
                clock.tick()?;
                let c2 = read(s, &mut self.string);
                if c2 == 0 {
                    return Ok(None);
                }
                if c2 == c {
                    return Ok(Some((self.pattern, self.string)));
                }
            },
        }
    }
}

/// Whether `string` matches `pattern` under `rules`, `other` being LIKE's escape
/// character (0 for none) or GLOB's `[`. Both end at their first NUL, as in SQLite.
pub(crate) fn matches(
    pattern: &[u8],
    string: &[u8],
    rules: &Rules,
    other: u32,
    clock: &mut Clock,
) -> Result<bool, Interrupted> {
    let mut places: Option<Places> = None;
    let (mut p, mut s) = (0, 0);
    loop {
        match run(pattern, p, string, s, rules, other, clock)? {
            Ended::Match => return Ok(true),
            Ended::Never => return Ok(false),
            Ended::NoMatch => {}
            Ended::Wildcard(found) => places = Some(found),
        }
        let Some(from) = places.as_mut() else {
            return Ok(false);
        };
        match from.next(string, clock)? {
            Some((np, ns)) => (p, s) = (np, ns),
            None => return Ok(false),
        }
    }
}

/// One run of SQLite's loop from pattern position `p` and string position `s`, up to
/// the end or the first wildcard.
fn run(
    pat: &[u8],
    mut p: usize,
    st: &[u8],
    mut s: usize,
    rules: &Rules,
    other: u32,
    clock: &mut Clock,
) -> Result<Ended, Interrupted> {
    let Rules {
        match_all,
        match_one,
        match_set,
        no_case,
    } = *rules;
    let mut escaped: Option<usize> = None;
    loop {
        clock.tick()?;
        let mut c = read(pat, &mut p);
        if c == 0 {
            return Ok(if at(st, s) == 0 {
                Ended::Match
            } else {
                Ended::NoMatch
            });
        }
        if c == match_all {
            loop {
                c = read(pat, &mut p);
                if c == match_all || (c == match_one && match_one != 0) {
                    if c == match_one && read(st, &mut s) == 0 {
                        return Ok(Ended::Never);
                    }
                } else {
                    break;
                }
            }
            if c == 0 {
                return Ok(Ended::Match);
            } else if c == other {
                if match_set == 0 {
                    c = read(pat, &mut p);
                    if c == 0 {
                        return Ok(Ended::Never);
                    }
                } else {
                    return Ok(Ended::Wildcard(Places {
                        kind: Seek::Every,
                        pattern: p - 1,
                        string: s,
                    }));
                }
            }
            let kind = match u8::try_from(c) {
                Ok(b) if b < 0x80 && no_case => {
                    Seek::After([b.to_ascii_uppercase(), b.to_ascii_lowercase()])
                }
                Ok(b) if b < 0x80 => Seek::After([b, b]),
                _ => Seek::AfterChar(c),
            };
            return Ok(Ended::Wildcard(Places {
                kind,
                pattern: p,
                string: s,
            }));
        }
        if c == other {
            if match_set == 0 {
                c = read(pat, &mut p);
                if c == 0 {
                    return Ok(Ended::NoMatch);
                }
                escaped = Some(p);
            } else {
                if !class(pat, &mut p, st, &mut s) {
                    return Ok(Ended::NoMatch);
                }
                continue;
            }
        }
        let c2 = read(st, &mut s);
        if c == c2 {
            continue;
        }
        let ascii_lower = |c: u32| u8::try_from(c).map(|b| b.to_ascii_lowercase());
        if no_case && c < 0x80 && c2 < 0x80 && ascii_lower(c) == ascii_lower(c2) {
            continue;
        }
        if c == match_one && escaped != Some(p) && c2 != 0 {
            continue;
        }
        return Ok(Ended::NoMatch);
    }
}

/// GLOB's `[…]` (just past the `[` at `*p`) against the character at `*s`: whether it
/// matches; both positions move past what was read.
fn class(pat: &[u8], p: &mut usize, st: &[u8], s: &mut usize) -> bool {
    let mut prior = 0u32;
    let mut seen = false;
    let mut invert = false;
    let c = read(st, s);
    if c == 0 {
        return false;
    }
    let mut c2 = read(pat, p);
    if c2 == u32::from(b'^') {
        invert = true;
        c2 = read(pat, p);
    }
    if c2 == u32::from(b']') {
        if c == u32::from(b']') {
            seen = true;
        }
        c2 = read(pat, p);
    }
    while c2 != 0 && c2 != u32::from(b']') {
        if c2 == u32::from(b'-') && at(pat, *p) != b']' && at(pat, *p) != 0 && prior > 0 {
            c2 = read(pat, p);
            if c >= prior && c <= c2 {
                seen = true;
            }
            prior = 0;
        } else {
            if c == c2 {
                seen = true;
            }
            prior = c2;
        }
        c2 = read(pat, p);
    }
    c2 != 0 && seen != invert
}
