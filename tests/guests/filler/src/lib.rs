//! Test guest: fills the state database. `burst_execute` and `burst_query` write
//! `ROWS:BYTES` (default `100:65536`, 6.4 MiB) in one `INSERT … SELECT zeroblob(…)` from a
//! recursive CTE, through `db.execute` and through `db.query` (with `RETURNING`);
//! `kv_flood` fills the key-value store until the host refuses, keeps what fitted and
//! reports the refusal; `small_write` writes one small row.
//!
//! On disk: `fill_data` appends 64 KiB chunks to `/data/fill` (or `fill` in the directory
//! the payload names) until a write fails and
//! reports how far it got and the error; `fill_forever` does the same but keeps trying
//! after a failure, so its call ends at the deadline; `fill_files` creates empty files
//! until one fails; `sparse` sets `/data/sparse`'s length to the payload's bytes;
//! `pwrite` writes one byte at the payload's offset in `/data/far`; `hard_link` writes
//! `/data/linked` and tries to give it a second name; `truncate_under_stream` writes on
//! through one descriptor while another truncates the file under it.

use std::io::{Seek, SeekFrom, Write};

use modhost_sdk::db::{self, Value};
use modhost_sdk::{Module, kv};

struct Filler;

const BURST: &str = "INSERT INTO filler_blobs (data) \
     WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < ?1) \
     SELECT zeroblob(?2) FROM n";

/// `ROWS:BYTES` from the payload.
fn burst(payload: &str) -> [Value; 2] {
    let (rows, bytes) = payload.split_once(':').unwrap_or(("100", "65536"));
    [
        Value::Integer(rows.parse().unwrap_or(100)),
        Value::Integer(bytes.parse().unwrap_or(65536)),
    ]
}

impl Module for Filler {
    fn handle(handler: &str, hook: &str, payload: &str) -> Result<String, String> {
        match handler {
            "burst_execute" => {
                let rows = db::execute(BURST, &burst(payload))?;
                Ok(format!("{rows} rows"))
            }
            "burst_query" => {
                let ids = db::query(&format!("{BURST} RETURNING id"), &burst(payload))?;
                Ok(format!("{} ids", ids.rows.len()))
            }
            "kv_flood" => {
                let value = "x".repeat(60_000);
                for i in 0u64.. {
                    if let Err(refusal) = kv::set(&format!("flood/{i}"), &value) {
                        return Ok(format!("{i} values, then: {refusal}"));
                    }
                }
                Ok("never full".to_owned())
            }
            "small_write" => {
                db::execute(
                    "INSERT INTO filler_blobs (data) VALUES (zeroblob(1000))",
                    &[],
                )?;
                Ok("written".to_owned())
            }
            "fill_data" => {
                let dir = if payload.is_empty() { "/data" } else { payload };
                let mut file = open_append(&format!("{dir}/fill"))?;
                let chunk = vec![7u8; 64 * 1024];
                let mut written = 0u64;
                loop {
                    if let Err(e) = file.write_all(&chunk) {
                        return Ok(format!("{written} bytes, then: {e}"));
                    }
                    written += chunk.len() as u64;
                }
            }
            "fill_forever" => {
                let mut file = open_append("/data/forever")?;
                let chunk = vec![7u8; 64 * 1024];
                loop {
                    let _ = file.write_all(&chunk);
                }
            }
            "fill_files" => {
                std::fs::create_dir_all("/data/many").map_err(|e| e.to_string())?;
                for i in 0u64.. {
                    if let Err(e) = std::fs::write(format!("/data/many/{i}"), b"") {
                        return Ok(format!("{i} files, then: {e}"));
                    }
                }
                Ok("never full".to_owned())
            }
            "sparse" => {
                let file = open_append("/data/sparse")?;
                let len = payload.parse().map_err(|_| "not a length".to_owned())?;
                file.set_len(len).map_err(|e| e.to_string())?;
                Ok(format!("{len} bytes long"))
            }
            "pwrite" => {
                let mut file = std::fs::OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open("/data/far")
                    .map_err(|e| e.to_string())?;
                let at = payload.parse().map_err(|_| "not an offset".to_owned())?;
                file.seek(SeekFrom::Start(at)).map_err(|e| e.to_string())?;
                file.write_all(b"x").map_err(|e| e.to_string())?;
                Ok(format!("written at {at}"))
            }
            "hard_link" => {
                // One file of the payload's bytes, then a hard link to it: a second name
                // for bytes the quota counted once.
                let bytes: usize = payload.parse().unwrap_or(1024);
                std::fs::write("/data/linked", vec![7u8; bytes]).map_err(|e| e.to_string())?;
                std::fs::hard_link("/data/linked", "/data/link")
                    .map_err(|e| format!("cannot link: {e}"))?;
                Ok("linked".to_owned())
            }
            "truncate_under_stream" => {
                // One descriptor writes on; another truncates the file under it each round:
                // the writer's next write lands past the truncated end, a hole before it.
                let path = "/data/under";
                let mut writer = std::fs::OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(path)
                    .map_err(|e| e.to_string())?;
                let cutter = std::fs::OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(|e| e.to_string())?;
                let chunk = vec![7u8; 64 * 1024];
                for round in 0u32..2000 {
                    if let Err(e) = writer.write_all(&chunk) {
                        return Ok(format!("{round} rounds, then: {e}"));
                    }
                    cutter.set_len(0).map_err(|e| e.to_string())?;
                }
                Ok("2000 rounds".to_owned())
            }
            "unlinked_open" => {
                // `N:MIB`: N files, each removed while open, then written to (through a
                // stream, every other one by setting its length) until refused or MIB MiB long:
                // bytes no walk of /data sees, which the quota counts all the same.
                let (files, mib) = payload.split_once(':').unwrap_or(("1", "64"));
                let (files, mib): (usize, usize) =
                    (files.parse().unwrap_or(1), mib.parse().unwrap_or(64));
                let chunk = vec![7u8; 64 * 1024];
                let mut written = 0usize;
                let mut open = Vec::new();
                'files: for n in 0..files {
                    let path = format!("/data/gone{n}");
                    let mut file = std::fs::File::create(&path).map_err(|e| e.to_string())?;
                    std::fs::remove_file(&path).map_err(|e| e.to_string())?;
                    for round in 0..mib * 16 {
                        let wrote = match n % 2 {
                            0 => file.write_all(&chunk),
                            _ => file.set_len(((round + 1) * chunk.len()) as u64),
                        };
                        if wrote.is_err() {
                            open.push(file);
                            continue 'files;
                        }
                        written += chunk.len();
                    }
                    open.push(file);
                }
                Ok(format!("wrote {written} bytes"))
            }
            "held_while_read" => {
                // `N:MIB:HOW`: N times, a file of MIB MiB is written and closed, opened
                // again only to read, then removed (HOW `remove`) or renamed over by the
                // next one (`rename`): its bytes stay on disk while it is held.
                let mut parts = payload.splitn(3, ':');
                let files: usize = parts.next().and_then(|n| n.parse().ok()).unwrap_or(1);
                let mib: usize = parts.next().and_then(|n| n.parse().ok()).unwrap_or(1);
                let rename = parts.next() == Some("rename");
                let chunk = vec![7u8; 64 * 1024];
                let (mut written, mut held) = (0usize, Vec::new());
                'files: for n in 0..files {
                    let path = format!("/data/held{n}");
                    let mut file = std::fs::File::create(&path).map_err(|e| e.to_string())?;
                    for _ in 0..mib * 16 {
                        if file.write_all(&chunk).is_err() {
                            break 'files;
                        }
                        written += chunk.len();
                    }
                    drop(file);
                    match rename {
                        true => {
                            held.push(std::fs::File::open("/data/kept").ok());
                            std::fs::rename(&path, "/data/kept").map_err(|e| e.to_string())?;
                        }
                        false => {
                            held.push(std::fs::File::open(&path).ok());
                            std::fs::remove_file(&path).map_err(|e| e.to_string())?;
                        }
                    }
                }
                Ok(format!("wrote {written} bytes"))
            }
            other => Err(format!("no handler `{other}` for hook `{hook}`")),
        }
    }
}

/// `path`, opened to append, created if missing.
fn open_append(path: &str) -> Result<std::fs::File, String> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("cannot open {path}: {e}"))
}

modhost_sdk::export_module!(Filler);
