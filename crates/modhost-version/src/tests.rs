use std::cmp::Ordering;

use proptest::prelude::*;

use super::*;

fn v(text: &str) -> Version {
    match Version::parse(text) {
        Ok(version) => version,
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn freepbx_order_golden_cases() {
    let less = [
        ("1.0", "1.0.0"),
        ("2.11.0alpha0", "2.11.0"),
        ("2.11.0rc1", "2.11.0"),
        ("1.9", "1.10"),
        ("16.0.40", "16.0.40.1"),
        ("1.0dev1", "1.0alpha1"),
        ("1.0alpha1", "1.0beta1"),
        ("1.0beta1", "1.0rc1"),
        ("1.0rc1", "1.0"),
        ("1.0", "1.0pl1"),
        ("1.0rc1", "1.0rc2"),
        ("1.0", "1.0.1rc1"),
        ("1.0.0rc1", "1.0.0.0"),
        ("2.11.0", "12.0.0"),
        ("13.0.190", "13.0.191"),
        ("1.0.0", "1.0pl1"),
        // Old FreePBX releases number within a release word.
        ("2.8.0.0RC1.4", "2.8.0.0rc1.5"),
        ("2.8.0.0rc1.5", "2.8.0.0"),
        ("2.9.0alpha1.6", "2.9.0beta1.1"),
        ("1.0rc1", "1.0rc1.0"),
        ("1.0rc1.9", "1.0rc1.10"),
    ];
    for (a, b) in less {
        assert_eq!(v(a).cmp(&v(b)), Ordering::Less, "{a} < {b}");
        assert_eq!(v(b).cmp(&v(a)), Ordering::Greater, "{b} > {a}");
    }
    let equal = [
        ("1.0b1", "1.0beta1"),
        ("1.0a1", "1.0alpha1"),
        ("1.0RC1", "1.0rc1"),
        ("1.0-rc1", "1.0rc1"),
        ("1.0p2", "1.0pl2"),
        ("1.01", "1.1"),
        ("1.0_beta+2", "1.0beta2"),
    ];
    for (a, b) in equal {
        assert_eq!(v(a), v(b), "{a} == {b}");
    }
}

#[test]
fn canonical_form() {
    assert_eq!(v("1.0-RC02").canonical(), "1.0rc2");
    assert_eq!(v("1.0b1").canonical(), "1.0beta1");
    assert_eq!(v("16.0.40").canonical(), "16.0.40");
    assert_eq!(v("2.11.0alpha0").canonical(), "2.11.0alpha0");
    assert_eq!(v("1.0-RC02").to_string(), "1.0-RC02");
    assert_eq!(v("2.8.0.0RC1.04").canonical(), "2.8.0.0rc1.4");
}

#[test]
fn rejects_what_is_not_a_version() {
    for bad in [
        "",
        "v1.0",
        "1..0",
        "1.0.",
        ".1",
        "1.0foo",
        "1.0rc1rc2",
        "1.0rc1.",
        "1.0rc1-2",
        "1.0 rc1",
        "1.0rc.",
        "abc",
        "1.0-",
        "99999999999999999999",
        "1.0rc-",
    ] {
        assert!(Version::parse(bad).is_err(), "`{bad}` must be rejected");
    }
}

#[test]
fn php_separators_between_numbers_are_dots() {
    // version_compare turns `-`, `_` and `+` into `.`: `1.0-1` is `1.0.1`.
    for (text, canonical) in [
        ("1.0-1", "1.0.1"),
        ("1.0_1", "1.0.1"),
        ("1.0+1", "1.0.1"),
        ("2-11-0rc1", "2.11.0rc1"),
        ("1.0-1-rc2", "1.0.1rc2"),
    ] {
        assert_eq!(v(text).canonical(), canonical, "{text}");
        assert_eq!(v(text), v(canonical), "{text}");
        assert_eq!(v(text).to_string(), text, "shown as written");
    }
    assert!(v("1.0-1") > v("1.0"));
    assert!(v("1.0-1") < v("1.0.2"));
    assert!(
        v("1.0-1") > v("1.0-rc1"),
        "a number after `-` is not a release word"
    );
    assert!(v("1.0-dev") < v("1.0-1"));
    for bad in ["1.0--1", "1.0-", "1.0-.1", "-1.0", "1.0rc1-2"] {
        assert!(Version::parse(bad).is_err(), "`{bad}` must be rejected");
    }
}

#[test]
fn operators_and_requirements() {
    let r = Requirement::parse("ge 16.0").map_err(|e| e.to_string());
    assert_eq!(r.as_ref().map(|r| r.op), Ok(Op::Ge));
    let bare = Requirement::parse("13.0.1").map_err(|e| e.to_string());
    assert_eq!(
        bare.as_ref().map(|r| r.op),
        Ok(Op::Ge),
        "no operator means ge"
    );
    for (op, expected) in [
        ("lt", Op::Lt),
        ("LE", Op::Le),
        ("==", Op::Eq),
        ("=", Op::Eq),
        ("eq", Op::Eq),
        ("!=", Op::Ne),
        ("ne", Op::Ne),
        ("gt", Op::Gt),
    ] {
        assert_eq!(Op::parse(op), Ok(expected));
    }
    // PHP's version_compare spellings (cxpanel writes `<version>>=2.10.0</version>`).
    for (op, expected) in [
        ("<", Op::Lt),
        ("<=", Op::Le),
        (">", Op::Gt),
        (">=", Op::Ge),
        ("<>", Op::Ne),
    ] {
        assert_eq!(Op::parse(op), Ok(expected));
    }
    for bad in ["=>", "=<", "gte", "geq", "><", "!", "~"] {
        assert_eq!(
            Op::parse(bad),
            Err(Error::Operator(bad.to_owned())),
            "{bad}"
        );
    }
    for (glued, op) in [("ge13.0", Op::Ge), ("==13.0", Op::Eq), ("LT2", Op::Lt)] {
        let r = Requirement::parse(glued).map_err(|e| e.to_string());
        assert_eq!(r.as_ref().map(|r| r.op), Ok(op), "{glued}");
    }
    for (glued, op) in [(">=2.10.0", Op::Ge), ("<>1.0", Op::Ne), ("<2", Op::Lt)] {
        let r = Requirement::parse(glued).map_err(|e| e.to_string());
        assert_eq!(r.as_ref().map(|r| r.op), Ok(op), "{glued}");
    }
    assert_eq!(
        Requirement::parse(">= 2.10.0").map(|r| r.to_string()),
        Ok("ge 2.10.0".to_owned())
    );
    assert!(Requirement::parse("=>13.0").is_err());
    assert!(Requirement::parse("v1.0").is_err());
    assert!(Requirement::parse("ge").is_err());
    assert!(Requirement::parse("ge 1.0 extra").is_err());
    let Ok(r) = Requirement::parse("lt 2.0") else {
        panic!("lt 2.0 parses")
    };
    assert!(r.matches(&v("1.9")));
    assert!(!r.matches(&v("2.0")));
    assert!(r.matches(&v("2.0rc1")));
}

/// Versions drawn from the whole grammar, with the separators and spellings that
/// canonicalise to the same thing, so that equal-but-different texts are exercised.
fn version_text() -> impl Strategy<Value = String> {
    // Between numbers, mostly `.`, sometimes PHP's other separators.
    let between = prop::sample::select(vec![".", ".", ".", "-", "_", "+"]);
    let numbers = prop::collection::vec((0u64..12, between), 1..5).prop_map(|ns| {
        ns.iter()
            .enumerate()
            .map(|(i, (n, sep))| {
                if i == 0 {
                    n.to_string()
                } else {
                    format!("{sep}{n}")
                }
            })
            .collect::<String>()
    });
    let word = prop::sample::select(vec![
        "dev", "alpha", "a", "beta", "b", "rc", "RC", "pl", "p",
    ]);
    let sep = prop::sample::select(vec!["", ".", "-", "_", "+"]);
    let after = prop::collection::vec(0u64..4, 1..3)
        .prop_map(|ns| ns.iter().map(u64::to_string).collect::<Vec<_>>().join("."));
    let stage = prop::option::of((sep.clone(), word, prop::option::of((sep, after))));
    (numbers, stage).prop_map(|(numbers, stage)| match stage {
        None => numbers,
        Some((s1, word, None)) => format!("{numbers}{s1}{word}"),
        Some((s1, word, Some((s2, after)))) => format!("{numbers}{s1}{word}{s2}{after}"),
    })
}

proptest! {
    #[test]
    fn order_is_antisymmetric(a in version_text(), b in version_text()) {
        let (a, b) = (v(&a), v(&b));
        prop_assert_eq!(a.cmp(&b), b.cmp(&a).reverse());
        prop_assert_eq!(a == b, a.canonical() == b.canonical());
    }

    #[test]
    fn order_is_transitive(a in version_text(), b in version_text(), c in version_text()) {
        // Sorting puts every triple in the premise's shape, so no case is wasted; the
        // checks below then test what sorting relied on.
        let mut sorted = [v(&a), v(&b), v(&c)];
        sorted.sort();
        let [a, b, c] = sorted;
        prop_assert!(a <= b && b <= c);
        prop_assert!(a <= c, "{} <= {} <= {} but not {} <= {}", a, b, c, a, c);
        if a == b && b == c {
            prop_assert_eq!(a.canonical(), c.canonical());
        }
    }

    #[test]
    fn equal_versions_hash_equally(a in version_text(), b in version_text()) {
        use std::hash::BuildHasher;
        let hasher = std::collections::hash_map::RandomState::new();
        let (a, b) = (v(&a), v(&b));
        if a == b {
            prop_assert_eq!(hasher.hash_one(&a), hasher.hash_one(&b));
        }
    }

    #[test]
    fn canonical_form_round_trips(a in version_text()) {
        let a = v(&a);
        let canonical = v(&a.canonical());
        prop_assert_eq!(&canonical, &a);
        prop_assert_eq!(canonical.canonical(), a.canonical());
    }

    #[test]
    fn parse_never_panics(text in ".{0,80}") {
        let _ = Version::parse(&text);
    }
}
