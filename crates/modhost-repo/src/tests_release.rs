//! `repo build`'s release: the release document and the claims of every signature, serials
//! that only grow, the next key it announces, and publishing in one step — an output of the
//! layout before builds had directories of their own taken over, and readers never finding
//! a file missing while builds replace each other.

use std::path::Path;
use std::time::Duration;

use modhost_update::index::FORMAT;
use modhost_update::{Claims, PublicKey, RELEASE_DOCUMENT, ReleaseDocument, SIGNATURE_SUFFIX};

use super::tests_build::{GROUPS, build_ok, files, tempdir, tgz, write, zip};
use super::*;
use crate::CURRENT;

/// The release document of the repository built into `out`.
fn release_of(out: &Path) -> ReleaseDocument {
    let bytes = std::fs::read(out.join(PUBLIC).join(RELEASE_DOCUMENT)).unwrap_or_default();
    ReleaseDocument::parse(&bytes).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn the_release_names_every_document_and_each_signature_claims_its_path_and_serial() {
    let (src, out) = (tempdir(), tempdir());
    tgz(src.path(), "core", "1.0.0");
    zip(src.path(), "phonebook", "1.0.0");
    let key = SecretKey::generate();
    let options = Options {
        key: Some(&key),
        valid_for: Duration::from_secs(3600),
        ..Options::default()
    };
    let built = build_with(src.path(), out.path(), &options).unwrap_or_else(|e| panic!("{e}"));
    let release = release_of(out.path());
    assert_eq!(
        (release.serial, release.valid_until),
        (built.serial, built.valid_until)
    );
    assert_eq!(release.valid_until - release.built, 3600);
    let public = out.path().join(PUBLIC);
    let documents: Vec<String> = files(&public)
        .into_iter()
        .filter(|f| !f.ends_with(SIGNATURE_SUFFIX) && !f.ends_with(".tgz") && !f.ends_with(".zip"))
        .filter(|f| f != RELEASE_DOCUMENT)
        .collect();
    let named: Vec<String> = release.documents.iter().map(|d| d.path.clone()).collect();
    assert_eq!(named, documents, "every document, by path");
    for path in documents
        .iter()
        .map(String::as_str)
        .chain([RELEASE_DOCUMENT])
    {
        let bytes = std::fs::read(public.join(path)).unwrap_or_default();
        if path != RELEASE_DOCUMENT {
            assert!(release.check(path, path, &bytes).is_ok(), "{path}");
        }
        let signature =
            std::fs::read(public.join(format!("{path}{SIGNATURE_SUFFIX}"))).unwrap_or_default();
        let location = format!("https://repo.example.org/{path}");
        let signed = modhost_update::signature::verify(
            &[key.public()],
            &location,
            &bytes,
            &signature,
            Some(release.serial),
        )
        .unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(
            signed.claims,
            Claims {
                timestamp: Some(release.built),
                file: Some(path.to_owned()),
                serial: Some(release.serial),
                expires: Some(release.valid_until),
            }
        );
    }
}

#[test]
fn serials_only_grow_even_within_one_second() {
    let (src, out) = (tempdir(), tempdir());
    tgz(src.path(), "core", "1.0.0");
    let serials: Vec<u64> = (0..3)
        .map(|_| build_ok(src.path(), out.path(), None).serial)
        .collect();
    assert!(
        serials.windows(2).all(|pair| pair[0] < pair[1]),
        "{serials:?}"
    );
    assert_eq!(release_of(out.path()).serial, serials[2]);
}

#[test]
fn a_next_key_is_announced_only_in_a_release_signed_by_another() {
    let (src, out) = (tempdir(), tempdir());
    tgz(src.path(), "core", "1.0.0");
    let (key, next) = (SecretKey::generate(), SecretKey::generate());
    let next_public = next.public();
    let with = |key: Option<&SecretKey>, next: &PublicKey| {
        let options = Options {
            key,
            next_key: Some(next),
            ..Options::default()
        };
        build_with(src.path(), out.path(), &options)
    };
    for (refused, why) in [
        (with(None, &next_public), "only in a signed release"),
        (
            with(Some(&key), &key.public()),
            "is the key signing the release",
        ),
    ] {
        assert!(
            refused.as_ref().is_err_and(|e| e.to_string().contains(why)),
            "{refused:?}"
        );
    }
    let built = with(Some(&key), &next_public).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(built.next_key, Some(next_public.encode()));
    assert_eq!(release_of(out.path()).next_key, Some(next_public.encode()));
}

#[test]
fn a_next_key_withdrawn_is_said_and_a_rotation_kept_going_or_completed_is_not() {
    let (src, out) = (tempdir(), tempdir());
    tgz(src.path(), "core", "1.0.0");
    let (key, next, other) = (
        SecretKey::generate(),
        SecretKey::generate(),
        SecretKey::generate(),
    );
    let (next_public, other_public) = (next.public(), other.public());
    let build = |key: &SecretKey, next: Option<&PublicKey>| {
        let options = Options {
            key: Some(key),
            next_key: next,
            ..Options::default()
        };
        let built = build_with(src.path(), out.path(), &options).unwrap_or_else(|e| panic!("{e}"));
        built
            .warnings
            .into_iter()
            .filter(|w| w.contains("announced next key"))
            .collect::<Vec<_>>()
    };
    let id = next_public.key_id();
    // Announced, announced again: the rotation goes on.
    assert_eq!(build(&key, Some(&next_public)), Vec::<String>::new());
    assert_eq!(build(&key, Some(&next_public)), Vec::<String>::new());
    // Withdrawn: said, naming the key, once.
    let withdrawn = build(&key, None);
    assert!(
        withdrawn.len() == 1
            && withdrawn[0].contains(&id)
            && withdrawn[0].contains("announces no next key"),
        "{withdrawn:?}"
    );
    assert_eq!(build(&key, None), Vec::<String>::new());
    // Replaced by another: said.
    assert_eq!(build(&key, Some(&next_public)), Vec::<String>::new());
    let replaced = build(&key, Some(&other_public));
    assert!(
        replaced.len() == 1 && replaced[0].contains("announces another next key"),
        "{replaced:?}"
    );
    // Completed: the release is signed by the key announced.
    assert_eq!(build(&other, None), Vec::<String>::new());
}

#[test]
fn an_output_of_the_layout_before_builds_had_directories_is_taken_over() {
    let (src, out) = (tempdir(), tempdir());
    tgz(src.path(), "core", "1.0.0");
    write(&src.path().join("groups.toml"), GROUPS.as_bytes());
    // As a build before this layout left it: the parts as plain directories.
    let index = format!("{{\"format\":\"{FORMAT}\",\"modules\":[]}}");
    write(&out.path().join("public/index.json"), index.as_bytes());
    write(&out.path().join("public/packages/old-1.0.tgz"), b"old");
    write(&out.path().join("private/groups.toml"), GROUPS.as_bytes());
    build_ok(src.path(), out.path(), None);
    for part in [PUBLIC, PRIVATE] {
        let link = std::fs::read_link(out.path().join(part)).ok();
        assert_eq!(link, Some(Path::new(CURRENT).join(part)), "{part}");
    }
    assert!(!out.path().join("public/packages/old-1.0.tgz").exists());
    assert!(out.path().join("public/packages/core-1.0.0.tgz").is_file());
    assert!(out.path().join("private/groups.toml").is_file());
}

#[test]
fn readers_never_find_a_file_missing_while_builds_replace_each_other() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let (src, out) = (tempdir(), tempdir());
    tgz(src.path(), "core", "1.0.0");
    zip(src.path(), "phonebook", "1.0.0");
    let key = SecretKey::generate();
    build_ok(src.path(), out.path(), Some(&key));
    let public = out.path().join(PUBLIC);
    let watched = [
        RELEASE_DOCUMENT,
        "release.json.minisig",
        "index.json",
        "index.json.minisig",
        "packages/core-1.0.0.tgz",
        "packages/phonebook-1.0.0.zip",
        "freepbx/core.json",
        "a2/phonebook/1.0.0.zip",
        "joomla/phonebook.xml",
    ];
    let (done, reads) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicUsize::new(0)),
    );
    let reader = {
        let (done, reads, public) = (Arc::clone(&done), Arc::clone(&reads), public.clone());
        std::thread::spawn(move || {
            let mut missing = Vec::new();
            while !done.load(Ordering::SeqCst) {
                for file in watched {
                    match std::fs::read(public.join(file)) {
                        Ok(bytes) if !bytes.is_empty() => {}
                        other => missing.push(format!("{file}: {other:?}")),
                    }
                    reads.fetch_add(1, Ordering::SeqCst);
                }
                // Whatever release is current names the index being served.
                let release = std::fs::read(public.join(RELEASE_DOCUMENT))
                    .map_err(|e| e.to_string())
                    .and_then(|bytes| ReleaseDocument::parse(&bytes));
                if let Err(e) = release {
                    missing.push(format!("release: {e}"));
                }
            }
            missing
        })
    };
    for _ in 0..20 {
        build_ok(src.path(), out.path(), Some(&key));
    }
    done.store(true, Ordering::SeqCst);
    let missing = reader
        .join()
        .unwrap_or_else(|_| vec!["the reader panicked".into()]);
    assert!(missing.is_empty(), "{missing:?}");
    assert!(
        reads.load(Ordering::SeqCst) > 20 * watched.len(),
        "it read throughout"
    );
}
