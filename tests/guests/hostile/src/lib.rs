//! Test guest: every handler misbehaves in one way a sandbox must contain, except `echo`,
//! `remember` and `count`, which the tests use to show the host and the module still work.

use std::sync::atomic::{AtomicU32, Ordering};

use modhost_sdk::{Module, db, dispatch, kv, log};

struct Hostile;

#[inline(never)]
fn recurse(depth: u64) -> u64 {
    let frame = std::hint::black_box([depth; 64]);
    if depth == u64::MAX {
        return 0;
    }
    recurse(depth + 1) + frame[3]
}

impl Module for Hostile {
    fn handle(handler: &str, hook: &str, payload: &str) -> Result<String, String> {
        match handler {
            "spin" => {
                // Last words, which the deadline's report shows.
                eprintln!("spinning on {payload:?}");
                loop {
                    std::hint::black_box(());
                }
            }
            // Fires the hook it serves (every handler of it, its own among them), then
            // spins until stopped: a fan that would grow without end past its deadline.
            fan if fan.starts_with("fan") => {
                let _ = dispatch::fire(hook, payload);
                loop {
                    std::hint::black_box(());
                }
            }
            "note_then_spin" => {
                // A write the call's end must undo, then a loop only a limit stops.
                kv::set("noted", payload)?;
                loop {
                    std::hint::black_box(());
                }
            }
            "grow" => {
                // `N` holds N MiB and returns; no payload grows until something stops it.
                let target: Option<usize> = payload.parse().ok();
                let mut hog: Vec<Vec<u8>> = Vec::new();
                while target.is_none_or(|mib| hog.len() < mib) {
                    hog.push(vec![7; 1 << 20]);
                    std::hint::black_box(&hog);
                }
                Ok(format!("held {} MiB", hog.len()))
            }
            "hold_and_fire" => {
                // `N:HOOK:PAYLOAD` holds N MiB while the hook it fires runs.
                let mut parts = payload.splitn(3, ':');
                let mib: usize = parts.next().and_then(|n| n.parse().ok()).unwrap_or(0);
                let (hook, inner) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
                let held: Vec<Vec<u8>> = (0..mib).map(|_| vec![7; 1 << 20]).collect();
                std::hint::black_box(&held);
                let outcomes = dispatch::fire(hook, inner)?;
                Ok(outcomes
                    .iter()
                    .map(|o| {
                        format!(
                            "{}: {} {}",
                            o.module,
                            if o.ok { "ok" } else { "failed" },
                            o.output
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n"))
            }
            "recurse" => Ok(recurse(0).to_string()),
            "escape" => {
                let attempts = [
                    ("read /etc/passwd", std::fs::read("/etc/passwd").map(|_| ())),
                    (
                        "read /data/../../etc/passwd",
                        std::fs::read("/data/../../etc/passwd").map(|_| ()),
                    ),
                    ("write /tmp/escaped", std::fs::write("/tmp/escaped", "x")),
                    ("list /", std::fs::read_dir("/").map(|_| ())),
                    ("write /data/inside", std::fs::write("/data/inside", "x")),
                ];
                Ok(attempts
                    .iter()
                    .map(|(what, result)| match result {
                        Ok(()) => format!("{what}: allowed\n"),
                        Err(e) => format!("{what}: denied ({})\n", e.kind()),
                    })
                    .collect())
            }
            "shout" => {
                // Floods stderr, of which the host keeps the end for trap reports.
                let line = "x".repeat(1023);
                for _ in 0..1024 {
                    eprintln!("{line}");
                }
                Ok("shouted".to_owned())
            }
            "forge" => {
                // A log record whose message and field try to start records of their own.
                log::info(payload, &[("field", payload)]);
                Ok("logged".to_owned())
            }
            "refire" => {
                // `N:HOOK:PAYLOAD` fires the hook N times: each fired call would have a
                // log budget of its own if the dispatch did not count them together.
                let mut parts = payload.splitn(3, ':');
                let times: usize = parts.next().and_then(|n| n.parse().ok()).unwrap_or(0);
                let (hook, inner) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
                for _ in 0..times {
                    dispatch::fire(hook, inner)?;
                }
                Ok(format!("fired {times} times"))
            }
            "nest" => {
                // Nests directories under /data one level at a time as deep as it may, then
                // tries to nest deeper by moving a tree into the deepest. With `hold:N`, it first
                // holds N more handles, as many as the sandbox allows, leaving the host's own
                // lookups no room in its table.
                let mut held = Vec::new();
                if let Some(count) = payload.strip_prefix("hold:") {
                    std::fs::write("/data/held", "x").map_err(|e| e.to_string())?;
                    for _ in 0..count.parse::<usize>().unwrap_or(0) {
                        held.push(std::fs::File::open("/data/held").map_err(|e| e.to_string())?);
                    }
                }
                let mut dir = std::path::PathBuf::from("/data/nest");
                let mut made = 0;
                let stopped = loop {
                    match std::fs::create_dir(&dir) {
                        Ok(()) => made += 1,
                        Err(e) => break format!("{:?}", e.kind()),
                    }
                    if made == 1000 {
                        break "nothing".to_owned();
                    }
                    dir.push("d");
                };
                dir.pop();
                drop(held);
                let tree = std::path::Path::new("/data/tree");
                let moved = std::fs::create_dir_all(tree.join("a/b"))
                    .and_then(|()| std::fs::rename(tree, dir.join("tree")))
                    .map_or_else(|e| format!("{:?}", e.kind()), |()| "moved".to_owned());
                Ok(format!(
                    "made {made}, stopped by {stopped}; moving a tree in: {moved}; tree kept: {}",
                    tree.join("a/b").is_dir()
                ))
            }
            "chatter" => {
                let records: usize = payload.parse().unwrap_or(0);
                for i in 0..records {
                    log::info("chatter", &[("i", &i.to_string())]);
                }
                Ok("chattered".to_owned())
            }
            "flood" => {
                for i in 0..100_000 {
                    log::info("flood", &[("i", &i.to_string())]);
                }
                Ok("flooded".to_owned())
            }
            "crash" => {
                kv::set("crashed", "yes")?;
                panic!("hostile module crashed on purpose");
            }
            "remember" => {
                kv::set("remembered", payload)?;
                Ok(payload.to_owned())
            }
            "hog" => {
                // Fills its store until the host says no, and passes the refusal on.
                let value = "x".repeat(60_000);
                for i in 0u64.. {
                    kv::set(&format!("hog/{i}"), &value)?;
                }
                Ok("never full".to_owned())
            }
            "echo" => Ok(payload.to_owned()),
            "warn" => {
                // Writes to stderr and succeeds, as a library warning would.
                eprintln!("careful: {payload}");
                Ok("warned".to_owned())
            }
            "print" => {
                // `N`: prints N lines, as an author debugging with println! would, between
                // two log records.
                let lines: usize = payload.parse().unwrap_or(1);
                log::info("before printing", &[]);
                for i in 0..lines {
                    println!("line {i} from stdout");
                }
                log::info("after printing", &[]);
                Ok(format!("printed {lines}"))
            }
            "runaway" => {
                // Writes first, then one write statement that never ends: SQLite rolls back
                // the whole transaction when the deadline interrupts it.
                kv::set("runaway", "started")?;
                db::execute(
                    "INSERT INTO hostile_notes (note) \
                     WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n) \
                     SELECT 'never' FROM n WHERE x < 0",
                    &[],
                )?;
                Ok("the statement ended".to_owned())
            }
            "count" => {
                // Counts the calls this instance has served: more than one shows it was kept.
                static CALLS: AtomicU32 = AtomicU32::new(0);
                Ok((CALLS.fetch_add(1, Ordering::Relaxed) + 1).to_string())
            }
            "loopback" => {
                let depth: u32 = payload.parse().unwrap_or(0);
                kv::set(&format!("depth/{depth}"), "reached")?;
                match dispatch::fire("loopback", &(depth + 1).to_string()) {
                    Ok(outcomes) => Ok(outcomes
                        .iter()
                        .map(|o| format!("{}: {}", o.module, o.output))
                        .collect()),
                    Err(refusal) => Ok(format!("stopped at depth {depth}: {refusal}")),
                }
            }
            "nap" => {
                // Sleeps `payload` milliseconds, then writes: whatever changed meanwhile,
                // the writes land in the state the dispatch began with, or nowhere.
                let millis: u64 = payload.parse().unwrap_or(0);
                std::thread::sleep(std::time::Duration::from_millis(millis));
                db::execute("INSERT INTO hostile_notes (note) VALUES ('napped')", &[])?;
                kv::set("napped", payload)?;
                Ok("napped".to_owned())
            }
            "nap_file" => {
                // Sleeps `payload` milliseconds, then writes a file to /data alone: no
                // state statement tells it that its module changed meanwhile.
                let millis: u64 = payload.parse().unwrap_or(0);
                std::thread::sleep(std::time::Duration::from_millis(millis));
                std::fs::write("/data/napped.txt", payload)
                    .map_err(|e| format!("/data/napped.txt: {e}"))?;
                Ok("napped to a file".to_owned())
            }
            "sleep" => {
                std::thread::sleep(std::time::Duration::from_secs(24 * 60 * 60));
                Ok("woke up a day later".to_owned())
            }
            "hoard" => {
                // Descriptors are forgotten, not closed: only the host can take them back.
                let count: usize = payload.parse().unwrap_or(100);
                std::fs::write("/data/hoard", "x").map_err(|e| format!("cannot write: {e}"))?;
                for opened in 0..count {
                    let file = std::fs::File::open("/data/hoard")
                        .map_err(|e| format!("open #{opened} failed: {e}"))?;
                    std::mem::forget(file);
                }
                Ok(format!("holding {count} more descriptors"))
            }
            "bloat" => {
                // `ok:N` returns N bytes, `err:N` fails with an N-byte message.
                let (kind, size) = payload.split_once(':').unwrap_or(("ok", payload));
                let text = "x".repeat(size.parse().unwrap_or(0));
                if kind == "err" { Err(text) } else { Ok(text) }
            }
            "read" => {
                std::fs::read_to_string(payload).map_err(|e| format!("cannot read {payload}: {e}"))
            }
            "alias" => {
                // `N` fields whose keys and values all point at one MiB.
                aliased::log(payload.parse().unwrap_or(1), 1 << 20);
                Ok("logged".to_owned())
            }
            other => Err(format!("no handler `{other}` for hook `{hook}`")),
        }
    }
}

/// The `log` import called as no binding would: one buffer given as many arguments, so
/// the host would copy many times what the guest's memory holds.
#[allow(unsafe_code)]
mod aliased {
    #[link(wasm_import_module = "modhost:module/log@0.1.0")]
    unsafe extern "C" {
        #[link_name = "log"]
        fn raw_log(level: i32, message: *const u8, len: usize, fields: *const u32, count: usize);
    }

    /// Logs one record of `count` fields, each key and value the same `size` bytes.
    pub fn log(count: usize, size: usize) {
        let buffer = vec![b'k'; size];
        let (at, len) = (buffer.as_ptr() as u32, size as u32);
        let fields: Vec<u32> = (0..count).flat_map(|_| [at, len, at, len]).collect();
        let message = b"aliased";
        // SAFETY: every pointer is to memory this function holds for the call; the
        // canonical ABI lowers `list<field>` to a pointer and count of two (pointer,
        // length) pairs each, which `fields` is.
        unsafe { raw_log(2, message.as_ptr(), message.len(), fields.as_ptr(), count) };
    }
}

modhost_sdk::export_module!(Hostile);
