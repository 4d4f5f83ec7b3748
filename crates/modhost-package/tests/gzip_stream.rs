//! The gzip layer as GNU tar reads it: every member, each checked against its CRC32 and
//! length, nothing but zeros after the stream and nothing but zero padding after the tar's
//! end.

mod common;

use common::{
    WASM, XML, demo_tar, gzip, manifest, refused_with, scratch, tar_bytes, unpacked, write,
};

/// The demo module's tar, gzipped in members split at `cuts` (offsets into the tar).
fn members(tar: &[u8], cuts: &[usize]) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut start = 0;
    for &cut in cuts.iter().chain([&tar.len()]) {
        bytes.extend(gzip(&tar[start..cut]));
        start = cut;
    }
    bytes
}

#[test]
fn a_multi_member_gzip_is_read_to_its_last_member_wherever_it_is_split() {
    let scratch = scratch();
    let tar = demo_tar(&[]);
    // At an entry boundary, in the middle of a header, in the middle of module.xml.
    for cuts in [vec![1024], vec![700], vec![530, 1100, 1600]] {
        let package = write(
            scratch.path(),
            &format!("split-{}.tgz", cuts[0]),
            &members(&tar, &cuts),
        );
        assert_eq!(unpacked(&package), Ok("demo".into()), "{cuts:?}");
        assert_eq!(manifest(&package), Ok("demo".into()), "{cuts:?}");
    }
}

#[test]
fn a_second_member_cannot_smuggle_a_second_component() {
    let scratch = scratch();
    let first = tar_bytes(&[
        ("demo/module.xml", tar::EntryType::Regular, XML.as_bytes()),
        ("demo/module.wasm", tar::EntryType::Regular, WASM),
    ]);
    // The first member's tar without its end blocks, then a member with another
    // component: GNU tar extracts both, the second winning.
    let mut bytes = gzip(&first[..first.len() - 1024]);
    bytes.extend(gzip(&tar_bytes(&[(
        "demo/module.wasm",
        tar::EntryType::Regular,
        b"\0asm evil",
    )])));
    let package = write(scratch.path(), "smuggled.tgz", &bytes);
    refused_with(&unpacked(&package), &["duplicate entry `demo/module.wasm`"]);
}

#[test]
fn a_damaged_or_truncated_gzip_stream_is_refused() {
    let scratch = scratch();
    let good = gzip(&demo_tar(&[]));
    let len = good.len();
    let flip = |at: usize| {
        let mut bytes = good.clone();
        bytes[at] ^= 0x01;
        bytes
    };
    let checksum = "the gzip checksum does not match: the file is damaged";
    let truncated = "the gzip stream ends early: the file is truncated";
    for (name, bytes, expected) in [
        ("crc.tgz", flip(len - 8), checksum),
        ("isize.tgz", flip(len - 4), checksum),
        ("tail.tgz", good[..len - 4].to_vec(), truncated),
        ("footer.tgz", good[..len - 8].to_vec(), truncated),
        ("middle.tgz", good[..len / 2].to_vec(), truncated),
    ] {
        let package = write(scratch.path(), name, &bytes);
        refused_with(&unpacked(&package), &[expected]);
        // Reading only its module.xml reads it to its end too: a damaged package is
        // never listed, or taken as the newest of a directory.
        refused_with(&manifest(&package), &[expected]);
    }
    // Damage inside a tar header, which the tar reader meets before the member's
    // checksum: stored (not deflated), so that the damaged bytes are the header's own.
    let tar = demo_tar(&[]);
    let mut stored = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::none());
    assert!(std::io::Write::write_all(&mut stored, &tar).is_ok());
    let Ok(mut stored) = stored.finish() else {
        panic!("gzip")
    };
    let second = stored
        .windows(b"demo/module.wasm".len())
        .position(|w| w == b"demo/module.wasm")
        .unwrap_or_else(|| panic!("the second header is stored as it is"));
    // Its size and checksum fields, as a bad sector or a bad copy leaves them.
    stored[second + 124..second + 128].copy_from_slice(b"\xff\xffzz");
    stored[second + 148..second + 152].copy_from_slice(b"\xff\xffzz");
    let package = write(scratch.path(), "header.tgz", &stored);
    refused_with(&unpacked(&package), &[checksum]);
    refused_with(&manifest(&package), &[checksum]);
    // A whole gzip stream of a tar cut inside an entry's content.
    let tar = demo_tar(&[]);
    let cut = gzip(&tar[..1024 + 100]);
    let package = write(scratch.path(), "cut-tar.tgz", &cut);
    refused_with(
        &unpacked(&package),
        &["the archive ends in the middle of an entry: the file is truncated"],
    );
    // Without its end-of-archive blocks, but whole, as GNU tar takes it.
    assert!(tar.ends_with(&[0; 1024]));
    let unended = gzip(&tar[..tar.len() - 1024]);
    let package = write(scratch.path(), "unended.tgz", &unended);
    assert!(unpacked(&package).is_ok());
}

#[test]
fn bytes_after_the_gzip_stream_are_refused_but_zeros_padding_it() {
    let scratch = scratch();
    // Padded to a block, or with zeros appended: gzip, GNU tar and bsdtar read past them.
    for (name, pad) in [("zeros.tgz", 1000), ("block.tgz", 0)] {
        let mut bytes = gzip(&demo_tar(&[]));
        let padded = match pad {
            0 => bytes.len().next_multiple_of(512),
            n => bytes.len() + n,
        };
        bytes.resize(padded, 0);
        let package = write(scratch.path(), name, &bytes);
        assert_eq!(unpacked(&package), Ok("demo".into()), "{name}");
        assert!(manifest(&package).is_ok(), "{name}");
    }
    for (name, tail) in [
        ("garbage.tgz", &b"trailing garbage"[..]),
        ("zeros-then-garbage.tgz", &b"\0\0\0\0x"[..]),
    ] {
        let mut bytes = gzip(&demo_tar(&[]));
        bytes.extend_from_slice(tail);
        let package = write(scratch.path(), name, &bytes);
        for read in [unpacked(&package), manifest(&package)] {
            refused_with(
                &read,
                &["the file goes on after the end of its gzip stream"],
            );
        }
    }
    // A byte that could start another member is one cut short.
    let mut bytes = gzip(&demo_tar(&[]));
    bytes.push(0x1f);
    let package = write(scratch.path(), "half-magic.tgz", &bytes);
    refused_with(&unpacked(&package), &["the gzip stream ends early"]);
}

#[test]
fn only_zero_padding_may_follow_the_tars_end_inside_the_stream() {
    let scratch = scratch();
    let mut padded = demo_tar(&[]);
    padded.resize(10 * 1024, 0);
    let package = write(scratch.path(), "padded.tgz", &gzip(&padded));
    assert_eq!(unpacked(&package), Ok("demo".into()), "record padding");

    // A second tar after the first one's end: GNU tar stops at the end, and so must
    // the package.
    let mut hidden = demo_tar(&[]);
    hidden.extend(tar_bytes(&[("demo/x", tar::EntryType::Regular, b"x")]));
    let package = write(scratch.path(), "hidden.tgz", &gzip(&hidden));
    refused_with(
        &unpacked(&package),
        &["the tar archive's end is followed by more data inside the gzip stream"],
    );
}

#[test]
fn a_gzip_stream_that_holds_no_tar_says_so() {
    let scratch = scratch();
    let zip = common::zip_bytes(&[("demo/module.xml", XML.as_bytes())]);
    for (name, inner, found) in [
        (
            "double.tgz",
            gzip(&demo_tar(&[])),
            "another gzip stream: it was compressed twice",
        ),
        ("zip.tgz", zip, "a zip archive"),
        (
            "text.tgz",
            b"<module/>".repeat(100),
            "a package is a tar compressed once",
        ),
    ] {
        let package = write(scratch.path(), name, &gzip(&inner));
        for result in [unpacked(&package), manifest(&package)] {
            refused_with(
                &result,
                &["the gzip stream does not hold a tar archive", found],
            );
        }
    }
}
