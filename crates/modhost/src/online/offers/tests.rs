//! What a check keeps when the source changed under it.

use modhost_update::Kind;

use super::*;

const K1: &str = "RWQTRW9oHRmx23SKr5PSDx0Xn4X1XJwo/Ce2aq7TIaQ78uP5KxqnAdDk";
const K2: &str = "RWQs/PbX8Q0Kebg2m1WpHY56EKQLx9JOwpJCrOUaEmjQsuJNFT8T+/+i";
const K3: &str = "RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3";
const URL: &str = "https://repo.example.org";

/// What a check of `main`, as it is now, accepted: serial 10 from a release signed
/// by K1 announcing K2.
fn accepted_now(host: &Host) -> Accepted {
    let channel = channels(host)
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .find(|c| c.name == "main")
        .unwrap_or_else(|| panic!("no source main"));
    Accepted {
        name: channel.name,
        url: channel.url,
        pinned: channel.public_keys,
        seen: Some(Seen {
            serial: Some(10),
            signed_at: None,
        }),
        keys: Some((K1.to_owned(), Some(K2.to_owned()))),
        module: None,
    }
}

fn pinned(host: &Host) -> Vec<String> {
    let sources = host.state.sources().unwrap_or_default();
    sources
        .into_iter()
        .find(|s| s.name == "main")
        .map(|s| s.public_keys.into_iter().map(|k| k.key).collect())
        .unwrap_or_default()
}

#[test]
fn a_check_finishing_after_its_source_was_pinned_again_or_removed_keeps_nothing() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let host = Host::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
    let add = |key: &str| {
        host.add_source("main", Kind::Index, URL, Some(key), true)
            .unwrap_or_else(|e| panic!("{e}"));
    };
    add(K1);
    // Pinned again (a lost key's recovery) while the check ran: its answer is not kept.
    let stale = accepted_now(&host);
    add(K3);
    remember(&host, &[stale]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(pinned(&host), [K3]);
    let seen = host.state.seen("main").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(seen.and_then(|s| s.serial), None);
    // Removed while the check ran: nothing comes back.
    let stale = accepted_now(&host);
    host.remove_source("main", true)
        .unwrap_or_else(|e| panic!("{e}"));
    remember(&host, &[stale]).unwrap_or_else(|e| panic!("{e}"));
    assert!(host.state.seen("main").unwrap_or_default().is_none());
    // Unchanged, it is kept.
    add(K1);
    remember(&host, &[accepted_now(&host)]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(pinned(&host), [K1, K2]);
    let seen = host.state.seen("main").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(seen.and_then(|s| s.serial), Some(10));
}
