//! `hook` and `reload`: running hook points from the shell.

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use modhost::{OnError, Shape};

use crate::Context;
use crate::escape::{escape, escape_lines, escape_path};

/// Arguments of `hook`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The hook point, e.g. `get_config`, `lookup` or `userman.delUser`.
    name: String,
    /// The input the (first) handler receives; by convention JSON.
    #[arg(long, default_value = "", conflicts_with = "payload_file")]
    payload: String,
    /// Read the payload from FILE (`-`: standard input), for one too long for a command
    /// line.
    #[arg(long, value_name = "FILE")]
    payload_file: Option<std::path::PathBuf>,
    /// Override the hook point's shape.
    #[arg(long, value_enum)]
    shape: Option<ShapeArg>,
    /// Override what a failing handler does to the rest of the chain.
    #[arg(long, value_enum)]
    on_error: Option<OnErrorArg>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ShapeArg {
    Broadcast,
    Pipeline,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum OnErrorArg {
    Continue,
    Stop,
}

/// Prints each call in the order it ran; exits non-zero when any handler failed, whether
/// or not its failure stopped the chain. A handler's output and error are the module's
/// own text: shown escaped (newlines and tabs kept), exact under `--json`.
pub fn run(ctx: &Context, args: Args) -> Result<ExitCode> {
    // A root with nothing installed has no handler: a mistyped path is said, not made.
    let host = ctx.open_existing()?;
    let mut point = host.hook_point(&args.name);
    if let Some(shape) = args.shape {
        point.shape = match shape {
            ShapeArg::Broadcast => Shape::Broadcast,
            ShapeArg::Pipeline => Shape::Pipeline,
        };
    }
    if let Some(on_error) = args.on_error {
        point.on_error = match on_error {
            OnErrorArg::Continue => OnError::Continue,
            OnErrorArg::Stop => OnError::Stop,
        };
    }
    let payload = match &args.payload_file {
        Some(file) if file.as_os_str() == "-" => {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
                .context("reading the payload from standard input")?;
            text
        }
        Some(file) => std::fs::read_to_string(file)
            .with_context(|| format!("reading the payload from `{}`", escape_path(file)))?,
        None => args.payload.clone(),
    };
    let dispatch = host.dispatch_as(&point, &payload, &Default::default())?;
    if dispatch.calls.is_empty() && dispatch.left_out.is_empty() {
        // Said on stderr: the JSON stays the list of calls, empty.
        let other_case = host
            .hook_point_in_other_case(&args.name)
            .map(|point| {
                format!(
                    "; `{}` differs from it only in case (hook names are case-sensitive)",
                    escape(&point)
                )
            })
            .unwrap_or_else(|| not_mapped(&host, &args.name));
        eprintln!(
            "note: no running module handles hook `{}`{other_case}",
            escape(&args.name)
        );
    }
    // Said on stderr too, in both modes: the JSON stays the list of calls that ran.
    for left in &dispatch.left_out {
        let what = match left.cause {
            modhost::LeftOutCause::Changed => "result set aside",
            _ => "not run",
        };
        eprintln!(
            "note: {} `{}` (pri {}) {what}: {}",
            escape(&left.rawname),
            escape(&left.handler),
            left.priority,
            escape(&left.why)
        );
    }
    ctx.out.result(&dispatch.calls, || {
        dispatch
            .calls
            .iter()
            .map(|c| match (&c.output, &c.error) {
                (_, Some(error)) => format!(
                    "{} (pri {}) failed: {}\n",
                    escape(&c.rawname),
                    c.priority,
                    escape_lines(error)
                ),
                (output, None) => format!(
                    "{} (pri {}): {}\n",
                    escape(&c.rawname),
                    c.priority,
                    escape_lines(output.as_deref().unwrap_or(""))
                ),
            })
            .collect()
    })?;
    let failed = dispatch.calls.iter().filter(|c| !c.ok).count();
    if failed == 0 && dispatch.stopped_by.is_none() {
        return Ok(ExitCode::SUCCESS);
    }
    // stdout holds the calls (in JSON mode, the one document): the verdict goes to stderr.
    let broke = |rawname: &str| {
        !dispatch.calls.iter().any(|c| c.rawname == rawname && !c.ok)
            && dispatch
                .left_out
                .iter()
                .any(|l| l.rawname == rawname && l.cause == modhost::LeftOutCause::Broken)
    };
    let verdict = match &dispatch.stopped_by {
        Some(rawname) if broke(rawname) => format!(
            "hook `{}` stopped: `{}`'s handler could not run, its module is broken",
            escape(&args.name),
            escape(rawname)
        ),
        Some(rawname) => format!(
            "hook `{}` stopped: `{}`'s handler failed",
            escape(&args.name),
            escape(rawname)
        ),
        None => format!(
            "hook `{}`: {failed} of {} handlers failed",
            escape(&args.name),
            dispatch.calls.len()
        ),
    };
    writeln!(std::io::stderr(), "error: {verdict}")?;
    // A limit met is named by the setting that raises it, once each.
    let mut said = std::collections::BTreeSet::new();
    for kind in dispatch.calls.iter().filter_map(|c| c.kind) {
        if let Some(setting) = limit_setting(kind)
            && said.insert(setting)
        {
            writeln!(
                std::io::stderr(),
                "help: raise `{setting}` in the root's modhost.toml, under [limits] or \
                 [hooks.\"{}\"] for this hook point alone",
                escape(&args.name)
            )?;
        }
    }
    Ok(ExitCode::FAILURE)
}

/// The modhost.toml setting of the limit a handler met, if its failure is one.
fn limit_setting(kind: modhost::FailureKind) -> Option<&'static str> {
    match kind {
        modhost::FailureKind::Timeout => Some("call_timeout_ms"),
        modhost::FailureKind::OutOfMemory => Some("max_memory_mb"),
        modhost::FailureKind::OutputTooLarge => Some("max_output_kb"),
        modhost::FailureKind::TooManyResources => Some("max_resources"),
        _ => None,
    }
}

/// `reload`: regenerates the configuration from every running module's `get_config`.
pub fn reload(ctx: &Context) -> Result<()> {
    // Nothing to rebuild where nothing was ever installed: no root is made for it.
    let reload = ctx.open_existing()?.reload()?;
    ctx.out.result(&reload, || {
        let mut text: String = reload
            .handlers
            .iter()
            .map(|built| {
                format!(
                    "get_config  pri {:>4}  {}\n",
                    built.priority,
                    escape(&built.rawname)
                )
            })
            .collect();
        text += &format!(
            "wrote {} ({} bytes)\n",
            escape_path(&reload.path),
            reload.bytes
        );
        text
    })
}

/// What a hook nobody handles lacks, when the module its name belongs to (`hello` of
/// `hello.greet`) is installed: a handler a module.xml maps to it, or that module enabled.
fn not_mapped(host: &modhost::Host, hook: &str) -> String {
    let Some((rawname, _)) = hook.split_once('.') else {
        return String::new();
    };
    match host.module(rawname) {
        Ok(Some(record)) if record.status == modhost::Status::Enabled => format!(
            "; it is module `{}`'s hook point, and no enabled module's module.xml maps a \
             handler to it (under <hooks> or <methods>: `<{}>handler_name</{}>`)",
            escape(rawname),
            escape(hook),
            escape(hook)
        ),
        Ok(Some(record)) => format!(
            "; module `{}`, whose hook point it is, is {}",
            escape(rawname),
            record.status
        ),
        _ => String::new(),
    }
}
