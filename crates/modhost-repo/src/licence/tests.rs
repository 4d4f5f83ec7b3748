//! Group secrets: their strength, their sharing, and the keys handed out from them.

use super::*;

#[test]
fn a_secret_whose_directory_is_missing_says_so() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("keys").join("k.key");
    let message = write_secret(&path, "x").map_err(|e| e.to_string());
    assert_eq!(
        message,
        Err(format!(
            "`{}`: cannot be written: its directory `{}` does not exist",
            path.display(),
            dir.path().join("keys").display()
        ))
    );
}

#[test]
fn a_secret_is_never_written_over() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("secret");
    assert!(write_secret(&path, "first").is_ok());
    let again = write_secret(&path, "second").map_err(|e| e.to_string());
    assert!(
        again
            .as_ref()
            .is_err_and(|e| e.contains("exists already, and a secret is never written over")),
        "{again:?}"
    );
    assert_eq!(
        std::fs::read_to_string(&path).ok().as_deref(),
        Some("first")
    );
}

#[test]
fn licence_keys_depend_on_secret_and_email_only() {
    let key = licence_key("s3cret", "Admin@Example.org");
    assert_eq!(key, licence_key("s3cret", " admin@example.org "));
    assert_ne!(key, licence_key("s3cret", "other@example.org"));
    assert_ne!(key, licence_key("other", "admin@example.org"));
    assert_eq!(key.len(), 64);
}

#[test]
fn a_licence_key_matches_only_its_email_and_secret() {
    let key = licence_key("s3cret", "admin@example.org");
    assert!(licence_key_matches("s3cret", "Admin@Example.org", &key));
    assert!(licence_key_matches(
        "s3cret",
        "admin@example.org",
        &key.to_ascii_uppercase()
    ));
    let mut wrong = key.clone();
    wrong.replace_range(63.., if key.ends_with('0') { "1" } else { "0" });
    for (secret, email, key) in [
        ("s3cret", "admin@example.org", wrong.as_str()),
        ("s3cret", "admin@example.org", &key[..62]),
        ("s3cret", "admin@example.org", ""),
        ("s3cret", "admin@example.org", "zz"),
        ("s3cret", "admin@example.org", &format!("+{}", &key[1..])),
        ("s3cret", "other@example.org", key.as_str()),
        ("other", "admin@example.org", key.as_str()),
    ] {
        assert!(!licence_key_matches(secret, email, key), "{key}");
    }
}

/// The message `groups.toml` holding one group `pro` with `secret` is refused with,
/// or `None` when it is accepted.
fn refusal(secret: &str) -> Option<String> {
    let text = format!("[groups.pro]\nsecret = \"{secret}\"\nmodules = [\"phonebook\"]\n");
    Groups::parse(Path::new("src/groups.toml"), &text)
        .err()
        .map(|e| e.to_string())
}

#[test]
fn a_weak_group_secret_is_refused() {
    let counting: Vec<u8> = (0..32).collect();
    let b64 = |bytes: &[u8]| {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(bytes)
    };
    for (secret, why) in [
        ("s3cret".to_owned(), "neither hex nor base64"),
        ("s3creA".to_owned(), "is 6 characters of base64 (4 bytes)"),
        ("a".repeat(32), "is 32 hex digits (16 bytes)"),
        ("0".repeat(32), "is 32 hex digits (16 bytes)"),
        (
            "password".repeat(4),
            "is 32 characters of base64 (24 bytes)",
        ),
        ("0".repeat(64), "not random"),
        ("a".repeat(64), "not random"),
        ("ab".repeat(32), "not random"),
        ("0123456789abcdef".repeat(4), "not random"),
        ("9d2c6f1e8b4a7305".repeat(4), "not random"),
        (hex::encode(&counting), "not random"),
        (format!("{}a", "0f".repeat(32)), "odd number of hex digits"),
        ("password".repeat(6), "not random"),
        ("Q".repeat(44), "not random"),
        (b64(&[7; 32]), "not random"),
        (b64(&counting), "not random"),
        (
            "correct horse battery staple correct horse battery staple".to_owned(),
            "neither hex nor base64",
        ),
        // Words run together are valid base64, of random-looking bytes.
        (
            "thequickbrownfoxjumpsoverthelazydogsandcatsx".to_owned(),
            "reads as words",
        ),
        (
            "OurPbxLicenceSecretIsKeptInTheVaultUpstairs".to_owned(),
            "reads as words",
        ),
        // Text encoded looks random only to a check of the encoding.
        (
            b64(b"The quick brown fox jumps over the lazy dog!!"),
            "decodes to text",
        ),
        (
            hex::encode(b"correct horse battery staple and more words!"),
            "decodes to text",
        ),
        (
            b64(b"password1234567890password1234567890abcdefghij"),
            "decodes to text",
        ),
        (
            format!("  {}\\n", generate_secret()),
            "has spaces or a line break around it",
        ),
    ] {
        let message = refusal(&secret).unwrap_or_default();
        assert!(
            message.contains("src/groups.toml")
                && message.contains("group `pro`: its secret")
                && message.contains(why)
                && message.contains("modhost repo licence-secret"),
            "{secret}: {message}"
        );
        assert!(!message.contains(&secret), "the message shows the secret");
    }
}

#[test]
fn generated_and_random_secrets_are_accepted() {
    for _ in 0..200 {
        let secret = generate_secret();
        assert_eq!(secret.len(), 2 * MIN_SECRET);
        assert_eq!(refusal(&secret), None, "{secret}");
        let Some(bytes) = unhex(&secret) else {
            panic!("not hex: {secret}")
        };
        use base64::Engine as _;
        use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
        // What `openssl rand -base64 32` writes, and the URL-safe unpadded form.
        for encoded in [STANDARD.encode(&bytes), URL_SAFE_NO_PAD.encode(&bytes)] {
            assert_eq!(refusal(&encoded), None, "{encoded}");
        }
        assert_eq!(refusal(&secret.to_ascii_uppercase()), None, "{secret}");
    }
    assert_ne!(generate_secret(), generate_secret());
    assert_eq!(
        refusal("65a153f0d1c68f6b8c0c3334585905ef5f2f22c8317b4cfd06e016c3c3775c8f"),
        None
    );
}

#[test]
fn a_module_in_two_groups_is_refused_naming_both() {
    let (one, two) = (generate_secret(), generate_secret());
    let text = format!(
        "[groups.pro]\nsecret = \"{one}\"\nmodules = [\"phonebook\"]\n\
         [groups.ent]\nsecret = \"{two}\"\nmodules = [\"core\", \"phonebook\"]\n"
    );
    let refused = Groups::parse(Path::new("groups.toml"), &text)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        refused.contains("module `phonebook` is in groups `ent` and `pro`"),
        "{refused}"
    );
}

#[test]
fn groups_sharing_a_secret_are_refused_naming_both() {
    let secret = generate_secret();
    let text = format!(
        "[groups.pro]\nsecret = \"{secret}\"\nmodules = [\"phonebook\"]\n\
         [groups.ent]\nsecret = \"{secret}\"\nmodules = [\"voicemail\"]\n"
    );
    let refused = Groups::parse(Path::new("groups.toml"), &text)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        refused.contains("groups `ent` and `pro` have the same secret")
            && refused.contains("modhost repo licence-secret"),
        "{refused}"
    );
    // Each its own: both kept, and their keys differ.
    let text = text.replacen(&secret, &generate_secret(), 1);
    let groups = Groups::parse(Path::new("groups.toml"), &text);
    let keys = groups.map(|g| (g.licence_key("pro", "a@b.c"), g.licence_key("ent", "a@b.c")));
    assert!(
        keys.as_ref()
            .is_ok_and(|(pro, ent)| pro.is_some() && pro != ent),
        "{keys:?}"
    );
}

#[test]
fn a_key_handed_out_names_a_missing_file_an_unknown_group_and_an_empty_address() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("groups.toml");
    let said = |group: &str, email: &str| {
        Groups::licence_key_in(&path, group, email).map_err(|e| e.to_string())
    };
    let missing = said("pro", "a@b.c");
    assert!(
        missing.as_ref().is_err_and(|e| e.contains("no such file")),
        "{missing:?}"
    );
    let secret = generate_secret();
    let text = format!("[groups.pro]\nsecret = \"{secret}\"\nmodules = [\"phonebook\"]\n");
    std::fs::write(&path, &text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(said("pro", "a@b.c"), Ok(licence_key(&secret, "a@b.c")));
    let unknown = said("ent", "a@b.c");
    assert!(
        unknown
            .as_ref()
            .is_err_and(|e| e.contains("no group `ent`; its groups are `pro`")),
        "{unknown:?}"
    );
    let empty = said("pro", " ");
    assert!(
        empty
            .as_ref()
            .is_err_and(|e| e.contains("the e-mail address is empty")),
        "{empty:?}"
    );
}

#[test]
fn a_group_missing_its_secret_or_modules_is_named() {
    let path = Path::new("src/groups.toml");
    let message = |text: &str| {
        Groups::parse(path, text)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    let missing = message("[groups.pro]\nmodules = [\"phonebook\"]\n");
    assert!(
        missing.contains("src/groups.toml")
            && missing.contains("group `pro` has no `secret`")
            && missing.contains("modhost repo licence-secret"),
        "{missing}"
    );
    let missing = message(&format!(
        "[groups.pro]\nsecret = \"{}\"\n",
        generate_secret()
    ));
    assert!(
        missing.contains("src/groups.toml") && missing.contains("group `pro` has no `modules`"),
        "{missing}"
    );
    let unknown = message("[groups.pro]\nsecrets = \"x\"\nmodules = []\n");
    assert!(unknown.contains("unknown field `secrets`"), "{unknown}");
}
