//! A server's certificate refused, in words that say what to fix: real HTTPS on loopback,
//! with certificates made here that are wrong in one way each.

use std::path::Path;
use std::time::Duration;

use modhost_update::{Client, Digests, Error, Location, PRIVATE_CA, Release};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls_pki_types::{CertificateDer, PrivatePkcs8KeyDer};

mod common;

/// A server certificate and its key, and the CA that issued it (PEM) when it has one.
struct Made {
    cert: CertificateDer<'static>,
    key: KeyPair,
    ca: String,
}

fn fail(e: rcgen::Error) -> ! {
    panic!("rcgen: {e}")
}

/// A certificate for `names`, shaped by `shape`, issued by a fresh CA.
fn issued(names: &[&str], shape: impl FnOnce(&mut CertificateParams)) -> Made {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap_or_else(|e| fail(e));
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap_or_else(|e| fail(e));
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key).unwrap_or_else(|e| fail(e));
    let key = KeyPair::generate().unwrap_or_else(|e| fail(e));
    let mut params =
        CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
            .unwrap_or_else(|e| fail(e));
    shape(&mut params);
    let cert = params.signed_by(&key, &ca).unwrap_or_else(|e| fail(e));
    Made {
        cert: cert.der().clone(),
        key,
        ca: ca.pem(),
    }
}

/// A self-signed certificate for 127.0.0.1: a CA's when `ca`.
fn self_signed(ca: bool) -> Made {
    let mut params =
        CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap_or_else(|e| fail(e));
    if ca {
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    }
    let key = KeyPair::generate().unwrap_or_else(|e| fail(e));
    let cert = params.self_signed(&key).unwrap_or_else(|e| fail(e));
    Made {
        cert: cert.der().clone(),
        ca: cert.pem(),
        key,
    }
}

/// An HTTPS server on loopback presenting `made`'s certificate, answering every request
/// it gets through with 404; its base URL.
fn serve(made: &Made) -> String {
    let key = PrivatePkcs8KeyDer::from(made.key.serialize_der());
    let config = modhost_test_support::tls::server_config(vec![made.cert.clone()], key.into());
    modhost_test_support::tls::serve(config, |_, out| {
        let _ = out
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    })
}

/// A client trusting the public roots, and `ca` (PEM) when given.
fn client(dir: &Path, ca: Option<&str>) -> Client {
    let path = dir.join("ca.pem");
    if let Some(ca) = ca {
        assert!(std::fs::write(&path, ca).is_ok());
    }
    Client::new(ca.map(|_| path.as_path()), Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("{e}"))
}

/// What downloading a package from `url` gives.
fn download(client: &Client, url: &str, dir: &Path) -> Result<(), Error> {
    let mut digests = Digests::default();
    assert!(digests.set("sha256", &"0".repeat(64)).is_ok());
    let release = Release {
        rawname: "phonebook".into(),
        name: "Phonebook".into(),
        version: "1.0.0".into(),
        location: Location::Url(format!("{url}/phonebook-1.0.0.tgz")),
        document: None,
        size: None,
        digests,
        gated: false,
        supported: None,
    };
    client.download(&release, None, &dir.join("p.tgz"), &mut |_, _| {})
}

/// The message of a download from a server presenting `made`, by a client trusting `ca`.
fn refused(made: &Made, ca: Option<&str>) -> String {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    match download(&client(dir.path(), ca), &serve(made), dir.path()) {
        Err(Error::Fetch { message, .. }) => {
            assert!(
                !message.contains("OtherError") && !message.contains("invalid peer certificate"),
                "rustls' words: {message}"
            );
            message
        }
        other => panic!("expected a refused certificate, got {other:?}"),
    }
}

#[test]
fn a_self_signed_certificate_says_so_and_is_accepted_once_trusted() {
    let made = self_signed(false);
    let message = refused(&made, None);
    assert!(
        message.starts_with(
            "the server's certificate is issued by no CA modhost trusts: it is self-signed"
        ) && message.ends_with(&format!("; {PRIVATE_CA}")),
        "{message}"
    );
    // Trusted as its own CA, the server is reached: its 404 is the answer.
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let trusted = download(
        &client(dir.path(), Some(&made.ca)),
        &serve(&made),
        dir.path(),
    );
    assert!(
        matches!(trusted, Err(Error::Missing { status: 404, .. })),
        "{trusted:?}"
    );
}

#[test]
fn a_ca_certificate_used_as_the_servers_is_refused_even_when_trusted() {
    let made = self_signed(true);
    for ca in [None, Some(made.ca.as_str())] {
        let message = refused(&made, ca);
        assert!(
            message.starts_with("the server's certificate is a CA certificate")
                && message.contains("give the server a certificate issued by that CA")
                && !message.contains(PRIVATE_CA),
            "{message}"
        );
    }
}

#[test]
fn a_certificate_for_another_host_names_both() {
    let made = issued(&["repo.example.org"], |_| {});
    let message = refused(&made, Some(&made.ca));
    assert!(
        message.starts_with(
            "the server's certificate is not for this host name: it is for repo.example.org, \
             not 127.0.0.1"
        ) && !message.contains(PRIVATE_CA),
        "{message}"
    );
}

#[test]
fn an_expired_certificate_says_how_long_ago() {
    let made = issued(&["127.0.0.1"], |params| {
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    });
    let message = refused(&made, Some(&made.ca));
    assert!(
        message.starts_with("the server's certificate expired ")
            && message.contains(" days ago: the server must renew it"),
        "{message}"
    );
}

#[test]
fn a_ca_file_that_is_endless_huge_or_a_fifo_is_refused_without_waiting() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let refused = |path: &Path| match Client::new(Some(path), Duration::from_secs(5)) {
        Err(Error::File { message, .. }) => message,
        other => panic!("expected {path:?} refused, got {other:?}"),
    };
    assert_eq!(refused(Path::new("/dev/zero")), "not a regular file");
    let missing = refused(&dir.path().join("missing.pem"));
    assert_eq!(missing, "no such file");
    let fifo = dir.path().join("ca.fifo");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    assert!(made.as_ref().is_ok_and(|s| s.success()), "{made:?}");
    assert_eq!(refused(&fifo), "not a regular file");
    let huge = dir.path().join("huge.pem");
    assert!(std::fs::write(&huge, vec![b'A'; 2 * 1024 * 1024]).is_ok());
    assert_eq!(
        refused(&huge),
        "larger than 1024 KiB: not a PEM file of certificates"
    );
}
