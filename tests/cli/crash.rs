//! Crash safety: the process dies at every step of a change (fault injection), or at
//! random moments (SIGKILL); the next run repairs the root to the old version fully
//! working or the new one fully installed.

use std::time::{Duration, Instant};

use modhost_test_support::{Root, arg, package, package_at};

use crate::root;

/// What a consistent root holds for phonebook afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phonebook {
    Absent,
    V1,
    V2,
}

fn template(with: &[&str]) -> Root {
    let root = root();
    let mut install = vec!["install".to_owned()];
    for rawname in with {
        let package = match *rawname {
            "phonebook" => package_at("phonebook", "1.0.0"),
            other => package(other),
        };
        install.push(arg(&package).to_owned());
    }
    root.ok(&install.iter().map(String::as_str).collect::<Vec<_>>());
    root
}

/// Checks that the root is consistent and phonebook is in one of `allowed` states, fully:
/// its record, files, data, tables and hooks agree. Returns the state found.
fn consistent(root: &Root, allowed: &[Phonebook]) -> Phonebook {
    let list = root.ok(&["list", "--json"]).json();
    let version = list
        .as_array()
        .and_then(|l| l.iter().find(|m| m["rawname"] == "phonebook"))
        .map(|m| {
            (
                m["version"].as_str().unwrap_or_default().to_owned(),
                m["status"].clone(),
            )
        });
    let state = match version.as_ref().map(|(v, _)| v.as_str()) {
        None => Phonebook::Absent,
        Some("1.0.0") => Phonebook::V1,
        Some("2.0.0") => Phonebook::V2,
        Some(other) => panic!("unexpected phonebook version {other}"),
    };
    assert!(
        allowed.contains(&state),
        "phonebook is {state:?}, expected one of {allowed:?}"
    );
    assert!(
        root.dirs("staging").is_empty(),
        "staging is swept: {:?}",
        root.dirs("staging")
    );
    let recovered = root.ok(&["recover", "--json"]).json();
    assert_eq!(
        recovered["removed"],
        serde_json::json!([]),
        "nothing left for a second recovery"
    );
    assert_eq!(recovered["broken"], serde_json::json!([]));
    let calls = root
        .ok(&["hook", "lookup", "--payload", "2025550100", "--json"])
        .json();
    let output = calls
        .as_array()
        .and_then(|c| c.first())
        .map(|c| c["output"].as_str().unwrap_or_default().to_owned());
    match state {
        Phonebook::Absent => {
            assert_eq!(output, None);
            assert!(
                root.dirs("modules/phonebook").is_empty() && root.dirs("data/phonebook").is_empty()
            );
        }
        Phonebook::V1 | Phonebook::V2 => {
            let info = root.ok(&["info", "--json", "phonebook"]).json();
            assert_eq!(info["status"], "enabled", "{info}");
            let kept = usize::from(!info["backup_version"].is_null()) + 1;
            assert_eq!(
                root.dirs("modules/phonebook").len(),
                kept,
                "files of current and backup only"
            );
            assert_eq!(
                root.dirs("data/phonebook").len(),
                kept,
                "data of current and backup only"
            );
            let expected = if state == Phonebook::V1 {
                "Alice Example"
            } else {
                "Alice Example <+12025550100>"
            };
            assert_eq!(
                output.as_deref(),
                Some(expected),
                "the surviving version's hooks run"
            );
        }
    }
    state
}

/// Runs `args` with the process set to abort at `step`; it must die there.
fn crash_at(root: &Root, step: &str, args: &[&str]) {
    let mut command = root.command(args);
    command.env("MODHOST_FAULT", step);
    let run = Root::output(&mut command);
    assert!(!run.success, "{step}: the process should have died");
    assert!(
        run.stderr
            .contains(&format!("fault injection: aborting at {step}")),
        "{step}: {}",
        run.stderr
    );
}

#[test]
fn a_crash_at_every_step_leaves_the_old_or_the_new_version() {
    let base = template(&["core"]);
    let v1 = template(&["core", "phonebook"]);
    let v2 = Root::copy_of(&v1);
    v2.ok(&["upgrade", arg(&package_at("phonebook", "2.0.0"))]);
    let pb1 = package_at("phonebook", "1.0.0");
    let pb2 = package_at("phonebook", "2.0.0");
    let before = [
        "begin",
        "data-staged",
        "schema-applied",
        "lifecycle-called",
        "files-moved",
        "recorded",
    ];
    let after = ["apply:committed", "apply:cleaned"];
    let mut leftovers_seen = 0;

    let mut cases: Vec<(String, &Root, Vec<&str>, Phonebook)> = Vec::new();
    for step in before {
        cases.push((
            format!("install:{step}"),
            &base,
            vec!["install", arg(&pb1)],
            Phonebook::Absent,
        ));
        cases.push((
            format!("upgrade:{step}"),
            &v1,
            vec!["upgrade", arg(&pb2)],
            Phonebook::V1,
        ));
    }
    for step in after {
        cases.push((
            step.to_owned(),
            &base,
            vec!["install", arg(&pb1)],
            Phonebook::V1,
        ));
        cases.push((
            step.to_owned(),
            &v1,
            vec!["upgrade", arg(&pb2)],
            Phonebook::V2,
        ));
    }
    for (step, expected) in [
        ("uninstall:data-staged", Phonebook::V1),
        ("uninstall:lifecycle-called", Phonebook::V1),
        ("uninstall:recorded", Phonebook::V1),
        ("uninstall:committed", Phonebook::Absent),
        ("uninstall:cleaned", Phonebook::Absent),
    ] {
        cases.push((
            step.to_owned(),
            &v1,
            vec!["uninstall", "phonebook"],
            expected,
        ));
    }
    // A crash before a disable commits leaves the module enabled, its data as it was.
    for step in ["disable:data-staged", "disable:lifecycle-called"] {
        cases.push((
            step.to_owned(),
            &v1,
            vec!["disable", "phonebook"],
            Phonebook::V1,
        ));
    }
    for (step, expected) in [
        ("rollback:restored", Phonebook::V2),
        ("rollback:committed", Phonebook::V1),
    ] {
        cases.push((
            step.to_owned(),
            &v2,
            vec!["rollback", "phonebook"],
            expected,
        ));
    }

    for (step, template, args, expected) in &cases {
        let root = Root::copy_of(template);
        let dirs_before = root.dirs("modules/phonebook").len() + root.dirs("data/phonebook").len();
        crash_at(&root, step, args);
        let dirs_after_crash = root.dirs("modules/phonebook").len()
            + root.dirs("data/phonebook").len()
            + root.dirs("staging").len();
        if dirs_after_crash > dirs_before {
            leftovers_seen += 1;
        }
        let state = consistent(&root, &[*expected]);
        // The repaired root takes the next change as if nothing had happened.
        match state {
            Phonebook::Absent => root.ok(&["install", arg(&pb1)]),
            Phonebook::V1 => root.ok(&["upgrade", arg(&pb2)]),
            Phonebook::V2 => root.ok(&["rollback", "phonebook"]),
        };
        consistent(&root, &[Phonebook::V1, Phonebook::V2]);
    }
    assert!(
        leftovers_seen >= 8,
        "crashes left leftovers for recovery to sweep ({leftovers_seen} cases)"
    );
}

/// Kills `args` with SIGKILL at `count` moments spread over its normal duration, checking
/// after each that the root is consistent. Returns how often each outcome was seen.
fn kill_loop(template: &Root, args: &[&str], allowed: &[Phonebook], count: u32) -> Vec<Phonebook> {
    let timing = Root::copy_of(template);
    let started = Instant::now();
    timing.ok(args);
    let duration = started.elapsed();
    let mut outcomes = Vec::new();
    for i in 0..count {
        let root = Root::copy_of(template);
        let mut child = root
            .command(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        let Ok(child) = child.as_mut() else {
            panic!("spawn: {child:?}")
        };
        std::thread::sleep(
            duration.mul_f64(f64::from(i) / f64::from(count))
                + Duration::from_millis(u64::from(i % 3)),
        );
        assert!(child.kill().is_ok() || child.try_wait().is_ok_and(|s| s.is_some()));
        let _ = child.wait();
        outcomes.push(consistent(&root, allowed));
    }
    outcomes
}

#[test]
fn sigkill_at_random_moments_of_an_upgrade_never_leaves_a_half_installed_module() {
    let v1 = template(&["core", "phonebook"]);
    let outcomes = kill_loop(
        &v1,
        &["upgrade", arg(&package_at("phonebook", "2.0.0"))],
        &[Phonebook::V1, Phonebook::V2],
        12,
    );
    assert!(
        outcomes.contains(&Phonebook::V1),
        "some kills landed before the commit: {outcomes:?}"
    );
}

#[test]
fn sigkill_at_random_moments_of_install_and_uninstall() {
    let base = template(&["core"]);
    let outcomes = kill_loop(
        &base,
        &["install", arg(&package_at("phonebook", "1.0.0"))],
        &[Phonebook::Absent, Phonebook::V1],
        8,
    );
    assert!(outcomes.contains(&Phonebook::Absent), "{outcomes:?}");
    let v1 = template(&["core", "phonebook"]);
    kill_loop(
        &v1,
        &["uninstall", "phonebook"],
        &[Phonebook::V1, Phonebook::Absent],
        8,
    );
}
