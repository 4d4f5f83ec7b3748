//! Test guest: fills the state database. `burst_execute` and `burst_query` write
//! `ROWS:BYTES` (default `100:65536`, 6.4 MiB) in one `INSERT … SELECT zeroblob(…)` from a
//! recursive CTE, through `db.execute` and through `db.query` (with `RETURNING`);
//! `kv_flood` fills the key-value store until the host refuses, keeps what fitted and
//! reports the refusal; `small_write` writes one small row.

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
            other => Err(format!("no handler `{other}` for hook `{hook}`")),
        }
    }
}

modhost_sdk::export_module!(Filler);
