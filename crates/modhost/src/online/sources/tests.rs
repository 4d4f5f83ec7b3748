use modhost_state::SeenRecord;

use super::*;

#[test]
fn a_modules_channel_that_is_not_https_is_refused_as_a_modules() {
    for url in [
        "file:///etc/passwd",
        "relative/updates.json",
        "/srv/updates",
        "ftp://h/x",
    ] {
        let refused = declared_source("pb/updateurl", Kind::Freepbx, url, None, None)
            .map(|_| String::new())
            .unwrap_or_else(|e| e);
        assert!(
            refused.ends_with("a module may only declare https:// update channels"),
            "{url}: {refused}"
        );
    }
    let plain = declared_source("pb/updateurl", Kind::Freepbx, "http://h/x.json", None, None)
        .map(|_| String::new())
        .unwrap_or_else(|e| e);
    assert!(plain.contains("plain HTTP is refused"), "{plain}");
    assert!(
        declared_source(
            "pb/updateurl",
            Kind::Freepbx,
            "https://h/x.json",
            None,
            None
        )
        .is_ok()
    );
}

#[test]
fn a_stored_source_never_shows_its_download_key() {
    let record = SourceRecord {
        name: "main".into(),
        url: "https://repo.example.org".into(),
        kind: "index".into(),
        public_keys: Vec::new(),
        extra_query: Some("email=a%40example.org&key=s3cret".into()),
    };
    let source = admin_source(&record, Kind::Index, Seen::default());
    for shown in [format!("{record:?}"), format!("{source:?}")] {
        assert!(
            !shown.contains("s3cret") && shown.contains("<redacted>"),
            "{shown}"
        );
    }
}

/// A root whose state holds `record` as a source, written as a newer modhost (or a
/// damaged database) might have written it.
fn root_with(record: &SourceRecord) -> (tempfile::TempDir, Host) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let host = Host::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
    let put = host.state.begin().and_then(|mut txn| {
        txn.put_source(record)?;
        txn.commit()
    });
    put.unwrap_or_else(|e| panic!("{e}"));
    (dir, host)
}

#[test]
fn pinning_other_keys_forgets_what_the_old_ones_vouched_for() {
    const K1: &str = "RWQTRW9oHRmx23SKr5PSDx0Xn4X1XJwo/Ce2aq7TIaQ78uP5KxqnAdDk";
    const K2: &str = "RWQs/PbX8Q0Kebg2m1WpHY56EKQLx9JOwpJCrOUaEmjQsuJNFT8T+/+i";
    let url = "https://repo.example.org";
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let host = Host::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
    let add = |key: &str| {
        host.add_source("main", Kind::Index, url, Some(key), true)
            .unwrap_or_else(|e| panic!("{e}"));
    };
    // What a release dated far ahead, signed by a lost or stolen key, leaves behind.
    let far = SeenRecord {
        url: url.into(),
        serial: Some(u64::MAX >> 1),
        signed_at: Some(u64::MAX >> 1),
        module: None,
    };
    let lock_out = || {
        let set = host.state.begin().and_then(|mut txn| {
            txn.set_seen("main", &far)?;
            txn.commit()
        });
        set.unwrap_or_else(|e| panic!("{e}"));
    };
    add(K1);
    lock_out();
    // The same key again keeps what it vouched for: a rollback stays refused.
    add(K1);
    let kept = host.state.seen("main").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(kept.as_ref(), Some(&far));
    // So it does mid-rotation, with a next key its release announced pinned beside it.
    let announced = host.state.begin().and_then(|mut txn| {
        txn.follow_keys("main", K1, Some(K2))?;
        txn.commit()
    });
    announced.unwrap_or_else(|e| panic!("{e}"));
    add(K1);
    let kept = host.state.seen("main").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(kept.as_ref(), Some(&far));
    // A key pinned beside it keeps it too: the old key still vouches, and an older
    // release it signed stays refused while a rotation is prepared.
    let replaced = host
        .add_source_pinned("main", Kind::Index, url, &[K1, K2], true)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(replaced);
    let kept = host.state.seen("main").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(kept.as_ref(), Some(&far));
    // A key no longer pinned starts afresh.
    add(K2);
    let seen = host.state.seen("main").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(seen.map(|s| (s.serial, s.signed_at)), Some((None, None)));
    let source = channels(&host)
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .find_map(|c| c.source.ok().filter(|s| s.name == "main"));
    assert_eq!(source.map(|s| s.seen), Some(Seen::default()));
}

#[test]
fn an_unknown_stored_kind_is_an_error_naming_it_not_an_index() {
    let (_dir, host) = root_with(&SourceRecord {
        name: "main".into(),
        url: "https://repo.example.org".into(),
        kind: "gopher".into(),
        public_keys: Vec::new(),
        extra_query: None,
    });
    let reports = host.check_online().unwrap_or_else(|e| panic!("{e}"));
    let error = reports
        .iter()
        .find(|r| r.source == "main")
        .and_then(|r| r.error.clone())
        .unwrap_or_default();
    assert_eq!(
        error,
        "its stored kind `gopher` is not one this modhost reads (index, a2, freepbx, joomla)"
    );
    let listed = host.sources().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].kind, None, "never shown as another kind");
}

#[test]
fn every_kind_a_source_can_be_added_with_is_read_back() {
    for kind in Kind::ALL {
        let (_dir, host) = root_with(&SourceRecord {
            name: "main".into(),
            url: "https://repo.example.org".into(),
            kind: kind.as_str().into(),
            public_keys: Vec::new(),
            extra_query: None,
        });
        let listed = host.sources().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(listed[0].kind, Some(kind));
    }
}

#[test]
fn a_module_whose_recorded_manifest_is_unreadable_is_reported_not_skipped() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let host = Host::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
    let record = modhost_state::ModuleRecord {
        rawname: "phonebook".into(),
        name: "Phonebook".into(),
        version: "1.0.0".into(),
        status: modhost_state::Status::Enabled,
        reason: None,
        module_dir: "1.0.0".into(),
        data_dir: "data".into(),
        component_sha256: "00".into(),
        manifest: "<module><rawname>phonebook".into(),
        installed_at: 0,
    };
    let put = host.state.begin().and_then(|mut txn| {
        txn.put_module(&record)?;
        txn.commit()
    });
    put.unwrap_or_else(|e| panic!("{e}"));
    let reports = host.check_online().unwrap_or_else(|e| panic!("{e}"));
    let report = reports
        .iter()
        .find(|r| r.source == "phonebook/module.xml")
        .unwrap_or_else(|| panic!("no report for the module: {reports:?}"));
    let error = report.error.clone().unwrap_or_default();
    assert!(
        error
            .starts_with("the channels it declares cannot be read: installed module `phonebook`: "),
        "{error}"
    );
}

#[test]
fn a_next_version_that_drops_its_publishers_key_is_told_apart() {
    let manifest = |channels: &str| {
        Manifest::parse(
            &format!(
                "<module><rawname>pb</rawname><name>P</name><version>1.0</version>{channels}</module>"
            ),
            "module.xml",
        )
        .unwrap_or_else(|e| panic!("{e}"))
    };
    let key = "RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3";
    let pinned = manifest(&format!(
        "<updateurl publickey=\"{key}\">https://example.com/pb.json</updateurl>"
    ));
    let joomla = manifest(&format!(
        "<updateservers><server publickey=\"{key}\">https://example.com/pb.xml</server></updateservers>"
    ));
    let unpinned = manifest("<updateurl>https://example.com/pb.json</updateurl>");
    let none = manifest("");
    assert!(unpins(&pinned, &unpinned));
    assert!(unpins(&joomla, &none));
    assert!(!unpins(&pinned, &joomla));
    assert!(!unpins(&unpinned, &none));
    assert!(!unpins(&pinned, &pinned));
}
