//! Test guest: every handler misbehaves in one way a sandbox must contain, except `echo`
//! and `remember`, which the tests use to show the host and the module still work.

use modhost_sdk::{Module, dispatch, kv, log};

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
            "spin" => loop {
                std::hint::black_box(());
            },
            "grow" => {
                let mut hog: Vec<Vec<u8>> = Vec::new();
                loop {
                    hog.push(vec![7; 1 << 20]);
                    std::hint::black_box(&hog);
                }
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
            "echo" => Ok(payload.to_owned()),
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
            "read" => {
                std::fs::read_to_string(payload).map_err(|e| format!("cannot read {payload}: {e}"))
            }
            other => Err(format!("no handler `{other}` for hook `{hook}`")),
        }
    }
}

modhost_sdk::export_module!(Hostile);
