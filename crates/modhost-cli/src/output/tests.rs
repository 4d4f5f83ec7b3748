use super::*;

#[test]
fn the_log_is_asked_only_for_records_at_a_level_it_may_show() {
    type Shown = tracing_subscriber::Registry;
    // The level `log`'s records are cut at where they are made (by `init`'s
    // `LogTracer`): the widest directive's, whatever the quiet targets.
    for (directives, level) in [
        ("warn,modhost::module=info", LevelFilter::INFO),
        ("warn", LevelFilter::WARN),
        ("modhost=debug", LevelFilter::DEBUG),
        ("ureq=trace", LevelFilter::TRACE),
    ] {
        let hint = Filter::<Shown>::max_level_hint(&shown::<Shown>(EnvFilter::new(directives)));
        assert_eq!(hint, Some(level), "{directives}");
    }
}

#[test]
fn a_cause_already_in_the_message_is_shown_once() {
    let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
    let shown = anyhow::Error::new(io)
        .context("`a.xml`: no such file")
        .context("reading the manifest");
    assert_eq!(chain(&shown), "reading the manifest: `a.xml`: no such file");
    let plain = anyhow::anyhow!("disk full").context("writing `b`");
    assert_eq!(chain(&plain), "writing `b`: disk full");
}

#[test]
fn log_records_are_shown_escaped() {
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_target(false)
        .with_ansi(false)
        .without_time()
        .fmt_fields(EscapedFields)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        let message = "hi\u{1b}]0;pwned\u{7}\r\nline two\tend";
        let rawname = "evil\u{1b}[2J";
        tracing::info!(target: "modhost::module", module = rawname, "{message}");
        // A debug value is escaped after its `Debug`: a backslash it wrote is doubled.
        tracing::warn!(module = %rawname, count = 3, path = ?"a\u{202e}b", "dropped");
    });
    let written = buffer
        .0
        .lock()
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default();
    assert_eq!(
        written,
        " INFO hi\\x1b]0;pwned\\x07\\x0d\n  line two\tend module=evil\\x1b[2J\n \
         WARN dropped module=evil\\x1b[2J count=3 path=\"a\\\\u{202e}b\"\n"
    );
}

#[test]
fn what_to_do_follows_the_command_that_failed() {
    let unmet = || {
        anyhow::Error::new(modhost::Error::Unmet {
            reasons: vec![
                "`backup` 16.0.68 requires module `core ge 16.0.56`: not installed".into(),
            ],
            mends: [modhost::Mend::Install].into(),
        })
    };
    let with_it = "install what it requires with it (give its packages too";
    let first = "install what it requires first (`modhost install` with its package";
    for (asked, said) in [
        (Asked::Install, with_it),
        (Asked::Other, with_it),
        (Asked::Upgrade, first),
        (Asked::Upgradeall, first),
        (Asked::Enable, first),
        (Asked::Rollback, first),
    ] {
        let hint = hint_after(&unmet(), asked).unwrap_or_default();
        assert!(hint.starts_with(said), "{asked:?}: {hint}");
    }
    let file = || {
        anyhow::Error::new(modhost::Error::NotAPackageDir {
            path: "core-16.0.40.tgz".into(),
            is_file: true,
        })
    };
    assert_eq!(
        hint_after(&file(), Asked::Install),
        Some("--from names a directory of packages: give a package file itself without it")
    );
    assert_eq!(
        hint(&file()),
        Some("`modhost manifest FILE` describes one package")
    );
    let nowhere = || anyhow::Error::new(modhost::Error::NoPackageDir);
    assert!(
        hint_after(&nowhere(), Asked::Upgradeall)
            .is_some_and(|h| h.contains("`upgradeall --online` upgrades from the update sources"))
    );
    assert_eq!(
        hint_after(&nowhere(), Asked::Install),
        Some("give --from DIR, or set `packages` in modhost.toml")
    );
}

#[test]
fn library_errors_get_the_flag_that_overrides_them() {
    let cases = [
        (
            modhost::Error::Locked {
                lock: "lock".into(),
                holder: None,
            },
            Some("without --no-wait, modhost waits for the lock"),
        ),
        (
            modhost::Error::InUse {
                rawname: "core".into(),
                dependents: vec!["voicemail".into()],
            },
            Some("--force does it anyway"),
        ),
        (
            modhost::Error::NoPackageDir,
            Some("give --from DIR, or set `packages` in modhost.toml"),
        ),
        (modhost::Error::NotInstalled("core".into(), None), None),
        // A full disk under any step of a change: what to do, and that it did nothing.
        (
            modhost::Error::Io {
                path: "staging/intent-1".into(),
                source: std::io::Error::from(std::io::ErrorKind::StorageFull),
            },
            Some("nothing was changed: free some space on that disk, then run it again"),
        ),
        (
            modhost::Error::NoRoomForData {
                rawname: "core".into(),
                operation: modhost::StagedCall::Uninstall,
                bytes: 1 << 20,
                path: "data/core/data-1/big".into(),
            },
            Some("`modhost delete` removes it without running its code, and needs no copy"),
        ),
        (
            modhost::Error::Runtime(modhost::RuntimeError::Failed {
                module: "pb".into(),
                version: "1.0".into(),
                call: "enable()".into(),
                message: "no trunk configured".into(),
                at_memory_cap: false,
            }),
            Some(
                "nothing of the attempt was kept (an upgrade keeps the version before it); \
                 `MODHOST_LOG=modhost::module=debug` shows what the module wrote to stderr",
            ),
        ),
    ];
    for (error, expected) in cases {
        let library = error.to_string();
        assert!(
            !library.contains("--"),
            "the library names no flag: {library}"
        );
        let error = anyhow::Error::new(error).context("uninstalling");
        assert_eq!(hint(&error), expected);
    }
}
