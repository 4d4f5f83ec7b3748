//! `compare-versions`: dpkg's version comparison, for FreePBX versions.

use std::process::ExitCode;

use anyhow::Result;
use modhost::{Op, Version};

use crate::output::Output;

/// `dpkg --compare-versions` for FreePBX versions: exit 0 when the relation holds, 1 when
/// it does not, 2 when a version or the operator is malformed.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The left-hand version.
    a: String,
    /// Any operator `<depends>` accepts, in any case: lt le eq ne ge gt, < <= = == != <>
    /// >= >.
    // Read by `Op::parse`, not by clap, so that the two accept the same operators and an
    // unknown one gets exit code 2 with `Op`'s message (a JSON error under --json).
    op: String,
    /// The right-hand version.
    b: String,
}

/// Compares the two versions; the exit code is the answer.
pub fn run(out: &Output, args: Args) -> Result<ExitCode> {
    let parsed = Version::parse(&args.a)
        .and_then(|a| Ok((a, Op::parse(&args.op)?, Version::parse(&args.b)?)));
    let (a, op, b) = match parsed {
        Ok(parsed) => parsed,
        Err(e) => {
            out.error(&e.into())?;
            return Ok(ExitCode::from(2));
        }
    };
    let holds = op.holds(&a, &b);
    let document =
        serde_json::json!({ "a": a.canonical(), "op": op, "b": b.canonical(), "holds": holds });
    out.result(&document, String::new)?;
    Ok(if holds {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
