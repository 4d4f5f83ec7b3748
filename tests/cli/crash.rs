//! Crash safety: the process dies at every step of a change (fault injection), or at
//! random moments (SIGKILL); the next run repairs the root to the old version fully
//! working or the new one fully installed.

use std::collections::BTreeSet;
use std::io::BufRead;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use modhost_test_support::{Root, arg, package, package_at, repackage};

use crate::root;

/// What a consistent root holds for phonebook afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phonebook {
    Absent,
    V1,
    V2,
    /// 2.1.0: version 2 again, repackaged as a newer version (a second upgrade).
    V21,
}

fn template(with: &[&str]) -> Root {
    warm_template(with, None)
}

/// A root with `with` installed, its cache first given the components `warm` has
/// compiled: changes in copies of it then load them instead of compiling them (seconds
/// each).
fn warm_template(with: &[&str], warm: Option<&Root>) -> Root {
    let root = root();
    if let Some(warm) = warm {
        // A root before its first change (its modhost.toml written), whose cache is
        // seeded: a directory that is no root must not hold a root's `cache/`.
        root.configure("");
        assert!(std::fs::create_dir_all(root.path().join("cache")).is_ok());
        warm_cache(&root, warm);
    }
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

/// Checks that the root is consistent and phonebook is in one of `allowed` states, fully
/// and enabled: its record, files, data, tables and hooks agree. Returns the state found.
fn consistent(root: &Root, allowed: &[Phonebook]) -> Phonebook {
    consistent_as(root, allowed, true)
}

/// [`consistent`], phonebook (when installed) being `enabled` or disabled, its handlers
/// running or not accordingly.
fn consistent_as(root: &Root, allowed: &[Phonebook], enabled: bool) -> Phonebook {
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
        Some("2.1.0") => Phonebook::V21,
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
                !root.path().join("modules/phonebook").exists()
                    && !root.path().join("data/phonebook").exists()
            );
        }
        Phonebook::V1 | Phonebook::V2 | Phonebook::V21 => {
            let info = root.ok(&["info", "--json", "phonebook"]).json();
            let status = if enabled { "enabled" } else { "disabled" };
            assert_eq!(info["status"], status, "{info}");
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
            let expected = match (enabled, state) {
                (false, _) => None,
                (true, Phonebook::V1) => Some("Alice Example"),
                (true, _) => Some("Alice Example <+12025550100>"),
            };
            assert_eq!(
                output.as_deref(),
                expected,
                "the surviving version's hooks run (if it is enabled)"
            );
        }
    }
    state
}

/// The version phonebook's backup holds, if any.
fn backup(root: &Root) -> Option<String> {
    let info = root.run(&["info", "--json", "phonebook"]);
    if !info.success {
        return None;
    }
    info.json()["backup_version"].as_str().map(str::to_owned)
}

/// Whether module `rawname` is installed, with files, data or a record left of it.
fn any_trace_of(root: &Root, rawname: &str) -> bool {
    let list = root.ok(&["list", "--json"]).json();
    list.as_array()
        .is_some_and(|l| l.iter().any(|m| m["rawname"] == rawname))
        || root.path().join("modules").join(rawname).exists()
        || root.path().join("data").join(rawname).exists()
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

/// One crash: abort `args` at `step` in a copy of `template`; afterwards phonebook must be
/// `expected`, `enabled` or not, its backup holding `backup`.
struct Case<'a> {
    step: String,
    template: &'a Root,
    args: Vec<String>,
    expected: Phonebook,
    enabled: bool,
    backup: Option<&'static str>,
}

impl<'a> Case<'a> {
    fn new(step: &str, template: &'a Root, args: &[&str], expected: Phonebook) -> Self {
        let backup = match expected {
            Phonebook::V2 => Some("1.0.0"),
            Phonebook::V21 => Some("2.0.0"),
            Phonebook::Absent | Phonebook::V1 => None,
        };
        Case {
            step: step.to_owned(),
            template,
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            expected,
            enabled: true,
            backup,
        }
    }

    fn disabled(self) -> Self {
        Case {
            enabled: false,
            ..self
        }
    }
}

#[test]
fn a_crash_repairing_a_module_whose_files_are_gone_leaves_nothing_of_the_repair() {
    let root = template(&["core", "phonebook"]);
    // Its record names `modules/phonebook/…`, which is gone: the module is broken.
    std::fs::remove_dir_all(root.path().join("modules/phonebook"))
        .unwrap_or_else(|e| panic!("{e}"));
    let info = root.ok(&["info", "--json", "phonebook"]).json();
    assert_eq!(info["status"], "broken", "{info}");
    let pb1 = package_at("phonebook", "1.0.0");
    crash_at(&root, "upgrade:files-moved", &["install", arg(&pb1)]);
    // The repair made `modules/phonebook` and a version in it: both go, though a record
    // names the module.
    let recovered = root.ok(&["recover"]);
    assert!(
        !recovered.stdout.contains("kept"),
        "nothing of the repair is kept: {}",
        recovered.stdout
    );
    assert!(!root.path().join("modules/phonebook").exists());
    assert!(root.dirs("staging").is_empty());
    root.ok(&["install", arg(&pb1)]);
    consistent(&root, &[Phonebook::V1]);
}

/// Phonebook 2.0.0 as 2.1.0: a second upgrade, replacing the backup the first one kept.
fn phonebook_21(root: &Root) -> PathBuf {
    repackage(
        &package_at("phonebook", "2.0.0"),
        |xml| xml.replace("<version>2.0.0</version>", "<version>2.1.0</version>"),
        &root.path().with_file_name("phonebook-2.1.0.tgz"),
    )
}

#[test]
fn a_crash_at_every_step_leaves_the_old_or_the_new_version() {
    // Every component the changes below load, compiled once.
    let warm = template(&["core", "phonebook", "voicemail"]);
    warm.ok(&["upgrade", arg(&package_at("phonebook", "2.0.0"))]);
    let base = warm_template(&["core"], Some(&warm));
    let v1 = warm_template(&["core", "phonebook"], Some(&warm));
    let v2 = Root::copy_of(&v1);
    v2.ok(&["upgrade", arg(&package_at("phonebook", "2.0.0"))]);
    let v1_disabled = Root::copy_of(&v1);
    v1_disabled.ok(&["disable", "phonebook"]);
    let pb1 = package_at("phonebook", "1.0.0");
    let pb2 = package_at("phonebook", "2.0.0");
    let pb21 = phonebook_21(&v2);
    let voicemail = package("voicemail");
    let (pb1, pb2, pb21, voicemail) = (arg(&pb1), arg(&pb2), arg(&pb21), arg(&voicemail));
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

    let mut cases: Vec<Case<'_>> = Vec::new();
    for step in before {
        let install = format!("install:{step}");
        cases.push(Case::new(
            &install,
            &base,
            &["install", pb1],
            Phonebook::Absent,
        ));
        let upgrade = format!("upgrade:{step}");
        cases.push(Case::new(&upgrade, &v1, &["upgrade", pb2], Phonebook::V1));
    }
    for step in after {
        cases.push(Case::new(step, &base, &["install", pb1], Phonebook::V1));
        cases.push(Case::new(step, &v1, &["upgrade", pb2], Phonebook::V2));
    }
    // A second upgrade replaces the backup the first kept: until it commits, 2.0.0 runs
    // with 1.0.0 kept; once it has, 2.1.0 runs with 2.0.0 kept, and 1.0.0 is swept.
    for (step, expected) in [
        ("upgrade:data-staged", Phonebook::V2),
        ("upgrade:lifecycle-called", Phonebook::V2),
        ("upgrade:recorded", Phonebook::V2),
        ("apply:committed", Phonebook::V21),
        ("apply:cleaned", Phonebook::V21),
    ] {
        cases.push(Case::new(step, &v2, &["upgrade", pb21], expected));
    }
    // The second module of a batch (phonebook, then voicemail): nothing commits.
    for step in [
        "install:begin:2",
        "install:lifecycle-called:2",
        "install:recorded:2",
    ] {
        cases.push(Case::new(
            step,
            &base,
            &["install", pb1, voicemail],
            Phonebook::Absent,
        ));
    }
    for (step, expected) in [
        ("uninstall:data-staged", Phonebook::V1),
        ("uninstall:lifecycle-called", Phonebook::V1),
        ("uninstall:recorded", Phonebook::V1),
        ("uninstall:committed", Phonebook::Absent),
        ("uninstall:cleaned", Phonebook::Absent),
    ] {
        cases.push(Case::new(step, &v1, &["uninstall", "phonebook"], expected));
    }
    for (step, expected) in [
        ("delete:lifecycle-called", Phonebook::V1),
        ("delete:recorded", Phonebook::V1),
        ("delete:committed", Phonebook::Absent),
        ("delete:cleaned", Phonebook::Absent),
    ] {
        cases.push(Case::new(step, &v1, &["delete", "phonebook"], expected));
    }
    // A crash before a disable or an enable commits leaves the module as it was, its data
    // too; after, as asked.
    for (step, disabled) in [
        ("disable:data-staged", false),
        ("disable:lifecycle-called", false),
        ("disable:committed", true),
        ("disable:cleaned", true),
    ] {
        let case = Case::new(step, &v1, &["disable", "phonebook"], Phonebook::V1);
        cases.push(if disabled { case.disabled() } else { case });
    }
    for (step, enabled) in [
        ("enable:data-staged", false),
        ("enable:lifecycle-called", false),
        ("enable:committed", true),
        ("enable:cleaned", true),
    ] {
        let case = Case::new(step, &v1_disabled, &["enable", "phonebook"], Phonebook::V1);
        cases.push(if enabled { case } else { case.disabled() });
    }
    for (step, expected) in [
        ("rollback:restored", Phonebook::V2),
        ("rollback:db-committed", Phonebook::V1),
        ("rollback:committed", Phonebook::V1),
        ("rollback:cleaned", Phonebook::V1),
    ] {
        cases.push(Case::new(step, &v2, &["rollback", "phonebook"], expected));
    }
    // Killed once the database has committed, before the intent says so: the database
    // says it, and what the change replaced goes.
    cases.push(Case::new(
        "apply:db-committed",
        &v2,
        &["upgrade", pb21],
        Phonebook::V21,
    ));
    for operation in ["uninstall", "delete"] {
        let step = format!("{operation}:db-committed");
        cases.push(Case::new(
            &step,
            &v2,
            &[operation, "phonebook"],
            Phonebook::Absent,
        ));
    }
    cases.push(
        Case::new(
            "disable:db-committed",
            &v1,
            &["disable", "phonebook"],
            Phonebook::V1,
        )
        .disabled(),
    );

    for case in &cases {
        let step = case.step.as_str();
        let root = Root::copy_of(case.template);
        let dirs_before = root.dirs("modules/phonebook").len() + root.dirs("data/phonebook").len();
        let args: Vec<&str> = case.args.iter().map(String::as_str).collect();
        crash_at(&root, step, &args);
        let dirs_after_crash = root.dirs("modules/phonebook").len()
            + root.dirs("data/phonebook").len()
            + root.dirs("staging").len();
        if dirs_after_crash > dirs_before {
            leftovers_seen += 1;
        }
        let state = consistent_as(&root, &[case.expected], case.enabled);
        assert_eq!(backup(&root).as_deref(), case.backup, "{step}: the backup");
        assert!(!any_trace_of(&root, "voicemail"), "{step}: no voicemail");
        // The repaired root takes the next change as if nothing had happened.
        match state {
            Phonebook::Absent => root.ok(&["install", pb1]),
            Phonebook::V1 if !case.enabled => root.ok(&["enable", "phonebook"]),
            Phonebook::V1 => root.ok(&["upgrade", pb2]),
            Phonebook::V2 | Phonebook::V21 => root.ok(&["rollback", "phonebook"]),
        };
        consistent(&root, &[Phonebook::V1, Phonebook::V2]);
    }
    assert!(
        leftovers_seen >= 30,
        "crashes left leftovers for recovery to sweep ({leftovers_seen} cases)"
    );

    // A count past the times the step is reached never fires: both modules install.
    let root = Root::copy_of(&base);
    let mut command = root.command(&["install", pb1, voicemail]);
    command.env("MODHOST_FAULT", "install:begin:3");
    let run = Root::output(&mut command);
    assert!(run.success, "{}", run.stderr);
    consistent(&root, &[Phonebook::V1]);
    assert!(any_trace_of(&root, "voicemail"));
}

/// Whether `line` is the status line a change prints once it has begun: from then on it
/// works on the root (the data directory is copied, the transaction open).
fn begun(line: &str) -> bool {
    ["Installing", "Upgrading", "Uninstalling"]
        .iter()
        .any(|verb| line.trim_start().starts_with(verb))
}

/// Runs `args` on `root` to its end; returns how long it worked on the root: from the
/// status line saying the change has begun (on stderr) to the result (on stdout), printed
/// once the change is committed and cleaned up, before the process tears down.
fn time_of_work(root: &Root, args: &[&str]) -> Duration {
    let mut child = root
        .command(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn: {e}"));
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        panic!("no pipes")
    };
    let mut errors = std::io::BufReader::new(stderr).lines();
    let seen = errors.by_ref().map_while(Result::ok).any(|l| begun(&l));
    let started = Instant::now();
    let mut result = String::new();
    let read = std::io::BufReader::new(stdout).read_line(&mut result);
    let elapsed = started.elapsed();
    let rest: Vec<String> = errors.map_while(Result::ok).collect();
    let status = child.wait();
    assert!(
        seen && read.is_ok() && status.is_ok_and(|s| s.success()),
        "`{}` did not run through: {result} {rest:?}",
        args.join(" ")
    );
    elapsed
}

/// The leftovers a change in progress may leave: what is under `staging/`, and
/// phonebook's version and data directories.
fn work_in_progress(root: &Root) -> BTreeSet<String> {
    ["staging", "modules/phonebook", "data/phonebook"]
        .iter()
        .flat_map(|sub| {
            root.dirs(sub)
                .into_iter()
                .map(move |d| format!("{sub}/{d}"))
        })
        .collect()
}

/// What the kills of a [`kill_loop`] found.
#[derive(Debug)]
struct Kills {
    /// The state each kill left phonebook in, once repaired.
    outcomes: Vec<Phonebook>,
    /// How many kills left something behind that recovery then removed: they landed
    /// inside the change.
    leftovers: usize,
}

/// Kills `args` with SIGKILL at `count` moments spread over the time it works on the root
/// (see [`time_of_work`]), checking after each that the root is consistent, until at
/// least `inside` kills have landed inside the change. The run that measures that time
/// also compiles the components the change loads, and `template` keeps them compiled: the
/// kills land in the change, not in compiling before it; a second run, with them
/// compiled, measures again, and the shorter time counts. On a loaded machine (the test
/// threads share two cores) a measurement can be far off, so while too few kills land
/// inside, another round spreads them over half the time of the one before, up to four
/// rounds.
fn kill_loop(
    template: &Root,
    args: &[&str],
    allowed: &[Phonebook],
    count: u32,
    inside: usize,
) -> Kills {
    let timing = Root::copy_of(template);
    let compiling = time_of_work(&timing, args);
    warm_cache(template, &timing);
    let mut duration = compiling.min(time_of_work(&Root::copy_of(template), args));
    let mut kills = Kills {
        outcomes: Vec::new(),
        leftovers: 0,
    };
    for i in 0..count * 4 {
        if i >= count && i % count == 0 {
            if kills.leftovers >= inside {
                break;
            }
            duration /= 2;
        }
        let i = i % count;
        let root = Root::copy_of(template);
        let mut child = root
            .command(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn: {e}"));
        let stderr = child.stderr.take().unwrap_or_else(|| panic!("no stderr"));
        // Kept open until the process is gone: it may still write.
        let mut lines = std::io::BufReader::new(stderr).lines();
        let seen = lines.by_ref().map_while(Result::ok).any(|l| begun(&l));
        assert!(seen, "`{}` never began", args.join(" "));
        std::thread::sleep(
            duration.mul_f64(0.8 * f64::from(i) / f64::from(count))
                + Duration::from_micros(u64::from(i % 3) * 300),
        );
        assert!(child.kill().is_ok() || child.try_wait().is_ok_and(|s| s.is_some()));
        let _ = child.wait();
        drop(lines);
        let left = work_in_progress(&root);
        kills.outcomes.push(consistent(&root, allowed));
        if !left.is_subset(&work_in_progress(&root)) {
            kills.leftovers += 1;
        }
    }
    kills
}

/// Copies the compiled components in `from`'s cache into `template`'s.
fn warm_cache(template: &Root, from: &Root) {
    let (source, target) = (from.path().join("cache"), template.path().join("cache"));
    for entry in std::fs::read_dir(&source).into_iter().flatten().flatten() {
        let name = entry.file_name();
        if !target.join(&name).exists() {
            let copied = std::fs::copy(entry.path(), target.join(&name));
            assert!(copied.is_ok(), "{name:?}: {copied:?}");
        }
    }
}

#[test]
fn sigkill_at_random_moments_of_an_upgrade_never_leaves_a_half_installed_module() {
    let v1 = template(&["core", "phonebook"]);
    let kills = kill_loop(
        &v1,
        &["upgrade", arg(&package_at("phonebook", "2.0.0"))],
        &[Phonebook::V1, Phonebook::V2],
        12,
        5,
    );
    assert!(
        kills.outcomes.contains(&Phonebook::V1),
        "some kills landed before the commit: {kills:?}"
    );
    assert!(
        kills.leftovers >= 5,
        "most kills landed inside the change, leaving work for recovery: {kills:?}"
    );
}

#[test]
fn sigkill_at_random_moments_of_install_and_uninstall() {
    let base = template(&["core"]);
    let kills = kill_loop(
        &base,
        &["install", arg(&package_at("phonebook", "1.0.0"))],
        &[Phonebook::Absent, Phonebook::V1],
        8,
        3,
    );
    assert!(kills.outcomes.contains(&Phonebook::Absent), "{kills:?}");
    assert!(kills.leftovers >= 3, "{kills:?}");
    let v1 = template(&["core", "phonebook"]);
    let kills = kill_loop(
        &v1,
        &["uninstall", "phonebook"],
        &[Phonebook::V1, Phonebook::Absent],
        8,
        3,
    );
    assert!(kills.outcomes.contains(&Phonebook::V1), "{kills:?}");
    assert!(kills.leftovers >= 3, "{kills:?}");
}
