//! The deadline-aware `instr`, `replace`, `LIKE`, `GLOB` and `trim`s: SQLite's answers
//! for every input, and an end at the deadline for the inputs that took minutes.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use rusqlite::Connection;
use rusqlite::types::Value;

use super::{V1, database, open};
use crate::functions;

/// The calls compared, `?N` standing for the generated arguments.
const CALLS: &[&str] = &[
    "instr(?1, ?2)",
    "replace(?1, ?2, ?3)",
    "?1 LIKE ?2",
    "?1 LIKE ?2 ESCAPE ?3",
    "?1 NOT LIKE ?2",
    "like(?2, ?1)",
    "like(?2, ?1, ?3)",
    "?1 GLOB ?2",
    "glob(?2, ?1)",
    "trim(?1, ?2)",
    "ltrim(?1, ?2)",
    "rtrim(?1, ?2)",
];

/// What `sql` gives on `conn` with `args`: the value or the error's message.
fn answer(conn: &Connection, sql: &str, args: &[Value]) -> Result<Value, String> {
    conn.query_row(
        &format!("SELECT {sql}"),
        rusqlite::params_from_iter(args),
        |row| row.get::<_, Value>(0),
    )
    .map_err(|e| e.to_string())
}

/// A small value of any type, text and blobs from an alphabet rich in what patterns,
/// escapes and UTF-8 make special (including invalid UTF-8 and NUL).
fn value() -> impl Strategy<Value = Value> {
    let piece = prop::sample::select(vec![
        &b"a"[..],
        b"A",
        b"b",
        b"%",
        b"_",
        b"*",
        b"?",
        b"[",
        b"]",
        b"^",
        b"-",
        b"\\",
        b"\xc3\xa9",
        b"\xc3\x89",
        b"\xe2\x82\xac",
        b"\x80",
        b"\xc3",
        b"\xff",
        b"\0",
        b" ",
        b"1",
        b".",
    ]);
    let bytes = prop::collection::vec(piece, 0..8).prop_map(|pieces| pieces.concat());
    prop_oneof![
        1 => Just(Value::Null),
        2 => (-20i64..20).prop_map(Value::Integer),
        1 => prop::sample::select(vec![0.5, -1.0, 3.0, 1e20, 0.1]).prop_map(Value::Real),
        8 => bytes.clone().prop_map(|b| Value::Text(String::from_utf8_lossy(&b).into_owned())),
        3 => bytes.clone().prop_map(Value::Blob),
        3 => bytes.prop_map(|b| Value::Text(format!("{}", b.len() % 3)).clone()),
    ]
}

/// Text holding exactly `bytes`, invalid UTF-8 included, as SQLite may hold it.
fn raw_text(conn: &Connection, bytes: &[u8]) -> Value {
    conn.query_row("SELECT CAST(?1 AS TEXT)", [bytes], |row| {
        row.get::<_, Value>(0)
    })
    .unwrap_or(Value::Null)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn the_replacements_answer_as_sqlite_does(
        a in value(), b in value(), c in value(), raw in prop::bool::ANY,
        bytes in prop::collection::vec(prop::sample::select(vec![b'a', b'%', b'_', 0x80, 0xc3, 0xa9, 0xff, 0]), 0..6),
    ) {
        let (Ok(plain), Ok(ours)) = (Connection::open_in_memory(), Connection::open_in_memory()) else {
            panic!("in-memory connections")
        };
        prop_assert!(functions::install(&ours).is_ok());
        // Text that is not UTF-8 reaches the functions only from SQL (CAST of a blob).
        let a = if raw { raw_text(&plain, &bytes) } else { a };
        let args = [a, b, c];
        for call in CALLS {
            let expected = answer(&plain, call, &args);
            let got = answer(&ours, call, &args);
            prop_assert_eq!(&got, &expected, "{} with {:?}", call, args);
        }
    }
}

#[test]
fn the_pattern_limit_and_escape_errors_are_sqlites() {
    let (Ok(plain), Ok(ours)) = (Connection::open_in_memory(), Connection::open_in_memory()) else {
        panic!("in-memory connections")
    };
    assert!(functions::install(&ours).is_ok());
    for sql in [
        "'a' LIKE printf('%.*c', 50001, 'a')",
        "NULL LIKE printf('%.*c', 50001, 'a')",
        "'a' LIKE printf('%.*c', 50000, '%')",
        "'a' LIKE 'a' ESCAPE ''",
        "'a' LIKE 'a' ESCAPE 'ab'",
        "'a' LIKE 'a' ESCAPE NULL",
        "'a%' LIKE 'a\\%' ESCAPE '\\'",
        "'a_' LIKE 'a%_' ESCAPE '%'",
        "'ab' LIKE 'a_' ESCAPE '_'",
        "'a' GLOB printf('%.*c', 50001, '*')",
        "instr(x'0102', x'02')",
        "instr('é€x', 'x')",
        "instr(x'c3a9', 'é')",
        "instr(12345, 34)",
        "replace(123, 2, 'x')",
        "replace('abc', '', 'x')",
        "typeof(replace(x'6162', 'z', 'x'))",
        "trim('ééxéé', 'é')",
        "rtrim(x'616263', 'c')",
    ] {
        assert_eq!(answer(&ours, sql, &[]), answer(&plain, sql, &[]), "{sql}");
    }
}

/// Statements each of which took SQLite from 10 s to over a minute in one function call.
const SLOW: &[&str] = &[
    "SELECT instr(printf('%.*c', 2000000, 'a'), printf('%.*c', 1000000, 'a') || 'b')",
    "SELECT length(replace(printf('%.*c', 1000000, 'a'), printf('%.*c', 500000, 'a'), 'b'))",
    "SELECT printf('%.*c', 200000, 'a') LIKE '%' || printf('%.*c', 49990, 'a') || 'b'",
    "SELECT printf('%.*c', 200000, 'a') GLOB '*' || printf('%.*c', 49990, 'a') || 'b'",
    "SELECT printf('%.*c', 200000, 'a') LIKE '%a%a%a%a%a%a%' || printf('%.*c', 49000, '_') || 'b'",
    "SELECT length(trim(printf('%.*c', 4000000, 'a'), printf('%.*c', 1000000, 'b') || 'a'))",
    "SELECT length(ltrim(printf('%.*c', 4000000, 'a'), printf('%.*c', 1000000, 'b') || 'a'))",
    "SELECT length(rtrim(printf('%.*c', 4000000, 'a'), printf('%.*c', 1000000, 'b') || 'a'))",
];

#[test]
fn one_function_call_ends_at_the_deadline() -> crate::Result<()> {
    let (_dir, state) = open();
    let mut txn = state.begin()?;
    txn.apply_schema("m", &database(V1))?;
    for sql in SLOW {
        let started = Instant::now();
        let deadline = started + Duration::from_millis(300);
        let answer = txn.module_query("m", sql, &[], deadline);
        let took = started.elapsed();
        let shown = &sql[..sql.len().min(70)];
        assert!(
            answer.is_ok() || answer == Err("the statement ran past the call's deadline".into()),
            "`{shown}`: {answer:?}"
        );
        // Unbounded, each runs for seconds; a loaded machine may add a scheduling slice
        // or two to the last look at the clock.
        assert!(
            took < Duration::from_millis(300 + 1200),
            "`{shown}` took {took:?}"
        );
    }
    Ok(())
}

#[test]
fn many_calls_in_one_statement_end_at_the_deadline() -> crate::Result<()> {
    let (_dir, state) = open();
    let mut txn = state.begin()?;
    txn.apply_schema("m", &database(V1))?;
    // Ten calls on megabytes fit between two of the progress handler's looks; each
    // took half a second in a debug build.
    let terms = |n: usize| -> String {
        let terms: Vec<String> = (0..n)
            .map(|i| format!("length(replace(hex(zeroblob(2000000 + {i})), '0', '1'))"))
            .collect();
        format!("SELECT {}", terms.join(" + "))
    };
    let started = Instant::now();
    let answer = txn.module_query("m", &terms(10), &[], started + Duration::from_millis(300));
    let took = started.elapsed();
    assert_eq!(
        answer.map(drop),
        Err("the statement ran past the call's deadline".into())
    );
    assert!(took < Duration::from_millis(300 + 1200), "took {took:?}");
    // Calls with nothing to stop them between (`randomblob` is not one that looks at the
    // clock) are bounded in number: thirty of the above are 120 places.
    let started = Instant::now();
    let answer = txn.module_query("m", &terms(30), &[], started + Duration::from_millis(300));
    assert_eq!(
        answer.map(drop),
        Err(
            "the statement calls functions at 120 places, more than the 48 one statement may: \
             SQLite runs calls in a row with nothing to stop them at the call's deadline; \
             split it into several statements"
                .into()
        )
    );
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "refused before running"
    );
    Ok(())
}
