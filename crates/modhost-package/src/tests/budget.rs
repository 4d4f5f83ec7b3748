//! The size and compression-ratio budget: every byte and entry counts, bombs are refused
//! quickly writing next to nothing, and the ratio holds over every stretch.

use std::io::{self, Read};
use std::path::Path;
use std::time::{Duration, Instant};

use modhost_test_support::hostile::{Entry, write_repeated_after};

use super::fixtures::{XML, edit_headers, module_dir, scratch, unpack_fresh, write_package};
use crate::budget::{Bounded, Budget, RATIO_GRACE};
use crate::error::classify;
use crate::{Limits, pack, read_manifest, unpack};

/// The bytes of every file under `dir`.
fn written(dir: &Path) -> u64 {
    let mut total = 0;
    let mut pending = vec![dir.to_owned()];
    while let Some(path) = pending.pop() {
        match fs_err::read_dir(&path) {
            Ok(entries) => pending.extend(entries.flatten().map(|e| e.path())),
            Err(_) => total += fs_err::metadata(&path).map(|m| m.len()).unwrap_or(0),
        }
    }
    total
}

/// `len` pseudo-random bytes: content no compressor shrinks, like a real component's.
fn incompressible(len: usize) -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect()
}

#[test]
fn every_decompressed_byte_and_entry_counts_against_the_limits() {
    let (dir, xml, wasm) = module_dir();
    let package = dir.path().join("demo.tgz");
    assert!(pack(&xml, &wasm, &package).is_ok());
    let refusal = |limits: Limits, unpacking: bool| {
        let staging = tempfile::tempdir_in(dir.path()).ok();
        let staging = staging.as_ref().map(|s| s.path()).unwrap_or(dir.path());
        let result = if unpacking {
            unpack(&package, staging, &limits).map(drop)
        } else {
            read_manifest(&package, &limits).map(drop)
        };
        result.err().map(|e| e.to_string()).unwrap_or_default()
    };
    // Three headers, module.xml and the component, in 512-byte blocks: 2.5 KiB.
    let small = Limits {
        max_total_size: 2048,
        ..Limits::default()
    };
    assert!(refusal(small, true).contains("unpacks to more than 2048 bytes"));
    let few = Limits {
        max_entries: 2,
        ..Limits::default()
    };
    assert!(refusal(few, true).contains("more than 2 entries"));
    let one = Limits {
        max_entries: 1,
        ..Limits::default()
    };
    assert!(refusal(one, false).contains("more than 1 entries"));
}

#[test]
fn zip_bombs_are_refused_quickly_writing_next_to_nothing() {
    let scratch = scratch();
    let dir = scratch.path();
    let zeros = vec![0u8; 64 << 20];
    // Honest: the declared size passes the ratio, so the entry is refused unread.
    let honest = dir.join("honest.zip");
    write_package(&honest, true, &[("demo/zeros", &zeros)]);
    // Lying: the declared size is small; the content is 64 MiB all the same.
    let lying = dir.join("lying.zip");
    write_package(&lying, true, &[("demo/zeros", &zeros)]);
    edit_headers(&lying, |header, central| {
        let size = if central { 24 } else { 22 };
        header[size..size + 4].copy_from_slice(&1024u32.to_le_bytes());
    });
    // Many small entries, each within the grace allowance: the budget is cumulative.
    let half = &zeros[..512 << 10];
    let names: Vec<String> = (0..8).map(|i| format!("demo/{i}")).collect();
    let files: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), half)).collect();
    let many = dir.join("many.zip");
    write_package(&many, true, &files);
    for (package, expected, most) in [
        (&honest, "compression-ratio limit 200:1", 0),
        (&lying, "cannot unpack `demo/zeros`", 1024),
        (&many, "unpacks to more than 1048576 bytes", RATIO_GRACE),
    ] {
        let started = Instant::now();
        let (unpacked, staging) = unpack_fresh(package, &Limits::default());
        let message = unpacked.err().unwrap_or_default();
        assert!(message.contains(expected), "{package:?}: {message}");
        assert!(started.elapsed() < Duration::from_secs(5), "{package:?}");
        assert!(
            written(&staging) <= most,
            "{package:?}: {} bytes written",
            written(&staging)
        );
    }
}

#[test]
fn a_zip_entry_cannot_produce_more_than_the_remaining_budget() {
    // The zip crate stops an entry at its declared size; the budget does not rely on it.
    let mut budget = Budget::new(&Limits::default());
    budget.compressed.set(1000);
    assert!(budget.charge(RATIO_GRACE - 10).is_ok());
    let mut entry = Bounded {
        inner: io::repeat(0).take(1 << 30),
        budget: &mut budget,
    };
    let copied = io::copy(&mut entry, &mut io::sink());
    let refusal = copied.map_err(|e| classify(Path::new("p.zip"), "reading".into(), e).to_string());
    assert_eq!(
        refusal,
        Err(
            "package `p.zip`: unpacks to more than 1048576 bytes (size limit 268435456 \
             bytes, compression-ratio limit 200:1)"
                .into()
        )
    );
}

#[test]
fn overlapping_zip_entries_count_the_compressed_bytes_once() {
    let mut budget = Budget::new(&Limits::default());
    let length = 10_000;
    // 10 kB compressed allow 2 MB; the second entry claims the same 10 kB again.
    assert!(budget.admit(length, RATIO_GRACE, length).is_ok());
    assert!(budget.charge(RATIO_GRACE).is_ok());
    let second = budget.admit(length, 1_000_000, length);
    assert_eq!(
        second.map_err(|e| e.to_string()),
        Err(
            "unpacks to more than 2000000 bytes (size limit 268435456 bytes, \
             compression-ratio limit 200:1)"
                .into()
        )
    );
}

#[test]
fn what_a_package_may_unpack_to_is_bounded_by_its_length() {
    let limits = Limits::default();
    assert_eq!(
        limits.most_unpacked(0),
        RATIO_GRACE,
        "small packages get the grace"
    );
    assert_eq!(limits.most_unpacked(1000), RATIO_GRACE);
    assert_eq!(
        limits.most_unpacked(1 << 20),
        200 << 20,
        "the ratio, times the length"
    );
    assert_eq!(
        limits.most_unpacked(10 << 20),
        256 << 20,
        "never past the size limit"
    );
    assert_eq!(limits.most_unpacked(u64::MAX), 256 << 20);
}

#[test]
fn the_ratio_holds_over_every_stretch_so_early_honest_bytes_leave_no_credit() {
    // 750 KB compressed earned 150 MB of credit under a package-wide ratio alone.
    let mut budget = Budget::new(&Limits::default());
    budget.compressed.set(750_000);
    assert!(budget.charge(750_000).is_ok(), "incompressible: 1:1");
    budget.compressed.set(750_000 + 1_000);
    let zeros = (0..200).try_for_each(|_| budget.charge(64 << 10));
    assert!(zeros.is_err(), "a mebibyte of zeros from 1 kB is refused");
    assert!(
        budget.produced < 750_000 + 2 * RATIO_GRACE,
        "refused after {} bytes",
        budget.produced
    );
    // Honest content that compresses 10:1 goes on for as long as it lasts.
    let mut budget = Budget::new(&Limits::default());
    for _ in 0..1000 {
        budget.compressed.set(budget.compressed.get() + 6_554);
        assert!(budget.charge(64 << 10).is_ok(), "{}", budget.produced);
    }
}

#[test]
fn a_bomb_behind_a_real_component_is_refused_writing_next_to_nothing() {
    let scratch = scratch();
    let dir = scratch.path();
    let component = incompressible(750_000);
    let files: [(&str, &[u8]); 2] = [
        ("demo/module.xml", XML.as_bytes()),
        ("demo/c.wasm", &component),
    ];
    // An attacker's gzip: one compressed mebibyte of zeros, repeated.
    let entries: Vec<Entry<'_>> = files
        .iter()
        .map(|(name, data)| (*name, tar::EntryType::Regular, *data))
        .collect();
    let zeros_run = vec![0u8; 1 << 20];
    let bomb = |path: &Path, size: u64| {
        write_repeated_after(
            path,
            &entries,
            "demo/zeros",
            tar::EntryType::Regular,
            &zeros_run,
            size,
        );
    };
    // Declaring 2 GiB: more than the package could ever unpack to, refused unread.
    let declared = dir.join("declared.tgz");
    bomb(&declared, 2 << 30);
    // Declaring 100 MiB, within what 850 kB may unpack to: refused while streaming.
    let streamed = dir.join("streamed.tgz");
    bomb(&streamed, 100 << 20);
    // A zip: the component's compressed bytes earn the zeros entry no credit.
    let zip = dir.join("bomb.zip");
    let zeros = vec![0u8; 32 << 20];
    write_package(&zip, true, &[files[0], files[1], ("demo/zeros", &zeros)]);
    for package in [&declared, &streamed, &zip] {
        let started = Instant::now();
        let (unpacked, staging) = unpack_fresh(package, &Limits::default());
        let message = unpacked.err().unwrap_or_default();
        assert!(
            message.contains("compression-ratio limit 200:1"),
            "{package:?}: {message}"
        );
        assert!(started.elapsed() < Duration::from_secs(5), "{package:?}");
        let most = component.len() as u64 + 2 * RATIO_GRACE;
        assert!(
            written(&staging) <= most,
            "{package:?}: {} bytes written",
            written(&staging)
        );
        let manifest = read_manifest(package, &Limits::default()).map_err(|e| e.to_string());
        assert!(
            manifest
                .as_ref()
                .err()
                .is_some_and(|m| m.contains("compression-ratio limit 200:1"))
                || package == &zip,
            "{package:?}: {manifest:?}"
        );
    }
}
