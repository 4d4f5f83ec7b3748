//! Deadline-aware replacements of SQLite's superlinear built-in functions.
//!
//! SQLite's progress handler runs between VM steps, and one call of a function is one
//! step: `instr`, `replace`, `LIKE`, `GLOB` and two-argument `trim`, `ltrim` and `rtrim`
//! take time up to the product of their arguments' lengths, so one call on a few
//! megabytes ran for a minute past a module's deadline while holding the write lock.
//! [`install`] overrides them on a connection (a function registered with a built-in's
//! name and number of arguments takes its place) with versions that give SQLite's answers
//! exactly (the same NULLs, types, positions, errors) but search in linear time where
//! an algorithm exists (`memchr`'s `memmem`) and otherwise ask the [`Clock`] every few
//! thousand steps, failing the statement with SQLite's own interruption, as the progress
//! handler does, once a module statement's deadline has passed.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;

use rusqlite::functions::{Context, FunctionFlags};
use rusqlite::types::{ToSql, ToSqlOutput, ValueRef};
use rusqlite::{Connection, ffi};

use crate::Stop;
use crate::pattern::{self, Rules};

/// SQLite's default `SQLITE_LIMIT_LIKE_PATTERN_LENGTH`, for statements outside a module's.
const DEFAULT_LIKE_LIMIT: i32 = 50_000;

/// How many steps pass between two looks at the time.
const STEPS_PER_LOOK: u32 = 4096;

/// What the running module statement allows: when it stops and the connection's limits.
#[derive(Debug, Clone)]
pub(crate) struct Scope {
    /// When the statement must stop.
    pub(crate) stop: Stop,
    /// The connection's `SQLITE_LIMIT_LIKE_PATTERN_LENGTH`.
    pub(crate) like_limit: i32,
    /// The connection's `SQLITE_LIMIT_LENGTH`.
    pub(crate) length_limit: i32,
}

thread_local! {
    /// The module statement this thread is running, if any: SQLite calls the functions
    /// on the thread that steps the statement.
    static SCOPE: RefCell<Option<Scope>> = const { RefCell::new(None) };
    /// A plain connection that renders doubles as text the way SQLite does.
    static RENDER: RefCell<Option<Connection>> = const { RefCell::new(None) };
}

/// While alive, this thread runs a module statement under its [`Scope`]; dropping it
/// restores what was before.
#[derive(Debug)]
pub(crate) struct Entered {
    previous: Option<Scope>,
}

/// Starts running a module statement under `scope` on this thread.
pub(crate) fn enter(scope: Scope) -> Entered {
    Entered {
        previous: SCOPE.with(|s| s.replace(Some(scope))),
    }
}

impl Drop for Entered {
    fn drop(&mut self) {
        SCOPE.with(|s| *s.borrow_mut() = self.previous.take());
    }
}

/// The deadline passed or the call was cancelled: the statement fails as the progress
/// handler fails it.
#[derive(Debug)]
pub(crate) struct Interrupted;

impl From<Interrupted> for rusqlite::Error {
    fn from(_: Interrupted) -> Self {
        // No message: SQLite would replace the interruption's code with a plain error.
        rusqlite::Error::SqliteFailure(ffi::Error::new(ffi::SQLITE_INTERRUPT), None)
    }
}

/// Counts steps and looks at the time (and the cancellation) every [`STEPS_PER_LOOK`] of
/// them.
#[derive(Debug)]
pub(crate) struct Clock {
    stop: Option<Stop>,
    steps: u32,
}

impl Clock {
    fn now() -> Clock {
        Clock {
            stop: SCOPE.with(|s| s.borrow().as_ref().map(|s| s.stop.clone())),
            steps: 0,
        }
    }

    /// Looks at the time now; `Err` once the statement must stop. A function that may
    /// run long looks first: a statement can call it many times between two of the
    /// progress handler's looks.
    fn look(&self) -> Result<(), Interrupted> {
        match &self.stop {
            Some(stop) if stop.reached() => Err(Interrupted),
            _ => Ok(()),
        }
    }

    /// One step; `Err` once the statement must stop.
    pub(crate) fn tick(&mut self) -> Result<(), Interrupted> {
        self.steps += 1;
        if self.steps < STEPS_PER_LOOK {
            return Ok(());
        }
        self.steps = 0;
        self.look()
    }
}

/// Text that may hold any bytes, as SQLite's text may.
struct Text(Vec<u8>);

impl ToSql for Text {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(ValueRef::Text(&self.0)))
    }
}

/// An error with SQLite's code and no message (SQLite then says the code's text).
fn code(code: i32) -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(ffi::Error::new(code), None)
}

/// An error a built-in reports with `sqlite3_result_error`.
fn message(text: &str) -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(ffi::Error::new(ffi::SQLITE_ERROR), Some(text.to_owned()))
}

/// What `sqlite3_value_text` gives for argument `i`: `None` for NULL, numbers as SQLite
/// renders them, blobs' bytes as they are.
fn text<'a>(ctx: &'a Context<'_>, i: usize) -> rusqlite::Result<Option<Cow<'a, [u8]>>> {
    Ok(match ctx.get_raw(i) {
        ValueRef::Null => None,
        ValueRef::Integer(n) => Some(Cow::Owned(n.to_string().into_bytes())),
        ValueRef::Real(r) => Some(Cow::Owned(render(r)?.into_bytes())),
        ValueRef::Text(t) | ValueRef::Blob(t) => Some(Cow::Borrowed(t)),
    })
}

/// A double as SQLite's text conversion writes it (`%!.15g` and its refinements).
fn render(value: f64) -> rusqlite::Result<String> {
    RENDER.with(|cell| {
        let mut conn = cell.borrow_mut();
        if conn.is_none() {
            *conn = Some(Connection::open_in_memory()?);
        }
        match conn.as_ref() {
            Some(conn) => conn.query_row("SELECT CAST(?1 AS TEXT)", [value], |row| row.get(0)),
            None => Err(code(ffi::SQLITE_NOMEM)),
        }
    })
}

/// Registers the replacements on `conn`.
pub(crate) fn install(conn: &Connection) -> rusqlite::Result<()> {
    let flags = FunctionFlags::SQLITE_UTF8
        | FunctionFlags::SQLITE_DETERMINISTIC
        | FunctionFlags::SQLITE_INNOCUOUS;
    conn.create_scalar_function("instr", 2, flags, instr)?;
    conn.create_scalar_function("replace", 3, flags, replace)?;
    for (name, sides) in [
        ("ltrim", Sides::LEFT),
        ("rtrim", Sides::RIGHT),
        ("trim", Sides::BOTH),
    ] {
        conn.create_scalar_function(name, 2, flags, move |ctx| trim(ctx, sides))?;
    }
    conn.create_scalar_function("like", 2, flags, |ctx| like(ctx, &pattern::LIKE))?;
    conn.create_scalar_function("like", 3, flags, |ctx| like(ctx, &pattern::LIKE))?;
    conn.create_scalar_function("glob", 2, flags, |ctx| like(ctx, &pattern::GLOB))?;
    Ok(())
}

/// `instr(X, Y)`: the 1-based position of the first `Y` in `X`, in characters for text
/// (counted as SQLite steps through them) and bytes for two blobs; 0 when absent.
fn instr(ctx: &Context<'_>) -> rusqlite::Result<Option<i64>> {
    Clock::now().look()?;
    let (haystack, needle) = (ctx.get_raw(0), ctx.get_raw(1));
    let blob = |v: ValueRef<'_>| matches!(v, ValueRef::Blob(_));
    if matches!(haystack, ValueRef::Null) || matches!(needle, ValueRef::Null) {
        return Ok(None);
    }
    let (Some(h), Some(n)) = (text(ctx, 0)?, text(ctx, 1)?) else {
        return Ok(None);
    };
    if n.is_empty() {
        return Ok(Some(1));
    }
    let Some(at) = memchr::memmem::find(&h, &n) else {
        return Ok(Some(0));
    };
    if blob(haystack) && blob(needle) {
        return Ok(Some(at as i64 + 1));
    }
    let continuation = |b: &u8| b & 0xc0 == 0x80;
    // SQLite tries the first byte and each byte that does not continue a character.
    if at > 0 && n.first().is_some_and(continuation) {
        return Ok(Some(0));
    }
    let tried = h
        .get(1..=at)
        .map_or(0, |s| s.iter().filter(|b| !continuation(b)).count());
    Ok(Some(tried as i64 + 1))
}

/// `replace(X, Y, Z)`: `X` with every `Y`, left to right, replaced by `Z`.
fn replace(ctx: &Context<'_>) -> rusqlite::Result<Option<Text>> {
    let Some(input) = text(ctx, 0)? else {
        return Ok(None);
    };
    let Some(from) = text(ctx, 1)? else {
        return Ok(None);
    };
    if from.first().is_none_or(|b| *b == 0) {
        return Ok(Some(Text(input.into_owned())));
    }
    let Some(to) = text(ctx, 2)? else {
        return Ok(None);
    };
    // Linear, but a statement may call it on megabytes many times over between two of
    // the progress handler's looks: it looks itself, and every few thousand matches.
    let mut clock = Clock::now();
    clock.look()?;
    let finder = memchr::memmem::Finder::new(&from);
    if to.len() > from.len() {
        let limit = SCOPE.with(|s| {
            s.borrow()
                .as_ref()
                .map_or(i64::from(i32::MAX), |s| i64::from(s.length_limit))
        });
        let mut count = 0i64;
        for _ in finder.find_iter(&input) {
            clock.tick()?;
            count += 1;
        }
        let length = input.len() as i64 + count * (to.len() - from.len()) as i64;
        if length > limit {
            return Err(code(ffi::SQLITE_TOOBIG));
        }
    }
    let mut out = Vec::with_capacity(input.len());
    let mut last = 0;
    for at in finder.find_iter(&input) {
        clock.tick()?;
        out.extend_from_slice(&input[last..at]);
        out.extend_from_slice(&to);
        last = at + from.len();
    }
    out.extend_from_slice(&input[last..]);
    Ok(Some(Text(out)))
}

/// Which ends `trim` works on.
#[derive(Debug, Clone, Copy)]
struct Sides(u8);

impl Sides {
    const LEFT: Sides = Sides(1);
    const RIGHT: Sides = Sides(2);
    const BOTH: Sides = Sides(3);
}

/// `trim(X, Y)`, `ltrim(X, Y)`, `rtrim(X, Y)`: `X` without the characters of `Y` at
/// its ends. Like SQLite, tries `Y`'s characters in order at each step and takes the
/// first that is there; the characters are found by length and then by a map.
fn trim(ctx: &Context<'_>, sides: Sides) -> rusqlite::Result<Option<Text>> {
    Clock::now().look()?;
    let Some(input) = text(ctx, 0)? else {
        return Ok(None);
    };
    let Some(set) = text(ctx, 1)? else {
        return Ok(None);
    };
    let set = until_nul(&set);
    // Each character of the set, by its bytes, with its first place in the set.
    let mut first: HashMap<&[u8], usize> = HashMap::new();
    let mut clock = Clock::now();
    let (mut i, mut place) = (0, 0);
    while i < set.len() {
        clock.tick()?;
        let end = pattern::skip(set, i).min(set.len());
        first.entry(&set[i..end]).or_insert(place);
        (i, place) = (end, place + 1);
    }
    let mut lengths: Vec<usize> = first.keys().map(|c| c.len()).collect();
    lengths.sort_unstable();
    lengths.dedup();
    let (mut start, mut end) = (0, input.len());
    if sides.0 & 1 != 0 {
        while start < end {
            clock.tick()?;
            let rest = &input[start..end];
            match taken(&first, &lengths, |len| rest.get(..len)) {
                Some(len) => start += len,
                None => break,
            }
        }
    }
    if sides.0 & 2 != 0 {
        while start < end {
            clock.tick()?;
            let rest = &input[start..end];
            let tail = |len: usize| rest.len().checked_sub(len).and_then(|at| rest.get(at..));
            match taken(&first, &lengths, tail) {
                Some(len) => end -= len,
                None => break,
            }
        }
    }
    Ok(Some(Text(input[start..end].to_vec())))
}

/// The length of the character of the set, first in the set's order, that `at` (the
/// bytes of a given length at one end) takes.
fn taken<'a>(
    first: &HashMap<&[u8], usize>,
    lengths: &[usize],
    at: impl Fn(usize) -> Option<&'a [u8]>,
) -> Option<usize> {
    let mut best: Option<(usize, usize)> = None;
    for &len in lengths {
        if let Some(place) = at(len).and_then(|c| first.get(c))
            && best.is_none_or(|(b, _)| *place < b)
        {
            best = Some((*place, len));
        }
    }
    best.map(|(_, len)| len)
}

/// `like(Y, X)`, `like(Y, X, E)` (`X LIKE Y [ESCAPE E]`) and `glob(Y, X)`.
fn like(ctx: &Context<'_>, rules: &Rules) -> rusqlite::Result<Option<i64>> {
    Clock::now().look()?;
    let pattern_bytes = match ctx.get_raw(0) {
        ValueRef::Null => 0,
        ValueRef::Text(t) | ValueRef::Blob(t) => t.len(),
        _ => text(ctx, 0)?.map_or(0, |t| t.len()),
    };
    let limit = SCOPE.with(|s| {
        s.borrow()
            .as_ref()
            .map_or(DEFAULT_LIKE_LIMIT, |s| s.like_limit)
    });
    if pattern_bytes > usize::try_from(limit).unwrap_or(0) {
        return Err(message("LIKE or GLOB pattern too complex"));
    }
    let mut rules = *rules;
    let escape = if ctx.len() == 3 {
        let Some(escape) = text(ctx, 2)? else {
            return Ok(None);
        };
        let escape = until_nul(&escape);
        if escape.is_empty() || pattern::skip(escape, 0) < escape.len() {
            return Err(message("ESCAPE expression must be a single character"));
        }
        let c = pattern::read(escape, &mut 0);
        if c == rules.match_all {
            rules.match_all = 0;
        }
        if c == rules.match_one {
            rules.match_one = 0;
        }
        c
    } else {
        rules.match_set
    };
    let (Some(pattern), Some(string)) = (text(ctx, 0)?, text(ctx, 1)?) else {
        return Ok(None);
    };
    let (pattern, string) = (until_nul(&pattern), until_nul(&string));
    let matched = pattern::matches(pattern, string, &rules, escape, &mut Clock::now())?;
    Ok(Some(i64::from(matched)))
}

/// `s` up to its first NUL, where SQLite's C string functions stop.
fn until_nul(s: &[u8]) -> &[u8] {
    memchr::memchr(0, s).map_or(s, |end| &s[..end])
}
