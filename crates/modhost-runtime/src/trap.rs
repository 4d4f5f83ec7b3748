//! How a call that trapped is reported: which limit stopped it, when one did; then what
//! the guest wrote to stderr (a Python traceback, a Rust panic message), which points at
//! the author's code; then the author's own frames of the backtrace, without the
//! language runtime's. The whole backtrace goes to the log at debug level.

use wasmtime::component::ResourceTableError;
use wasmtime::{FrameInfo, PoolConcurrencyLimitError, Trap, WasmBacktrace};

use crate::cancel::Cancelled;
use crate::deadline::DeadlinePassed;
use crate::limiter::{MemoryCapReached, Refused};
use crate::output::Captured;
use crate::runtime::POOL_INSTANCES;
use crate::{Call, Error, Failure, Limits};

/// Maps a wasmtime error of a call to [`Error::Trapped`], naming the module, its version
/// and the call, and telling which limit stopped it from other traps. `stderr` is the
/// call's, read when the error happens.
pub(crate) fn trapped<'a>(
    rawname: &'a str,
    version: &'a str,
    call: &'a Call,
    limits: Limits,
    stderr: Captured,
    refused: Refused,
) -> impl Fn(wasmtime::Error) -> Error + 'a {
    move |e| {
        // The chain with the wasm backtrace, not `{e:?}`: under RUST_BACKTRACE that would
        // add the host's own Rust stack, which says nothing of the module's code.
        tracing::debug!(target: "modhost::module", module = %rawname, "{call} stopped: {e:#}");
        let describe = || describe(&e, &stderr.contents().0);
        let failure = if e.is::<Cancelled>()
            || matches!(
                e.downcast_ref::<modhost_state::Error>(),
                Some(modhost_state::Error::Cancelled)
            ) {
            Failure::Cancelled {
                stderr: stderr_tail(&stderr.contents().0),
            }
        } else if e.is::<PoolConcurrencyLimitError>() {
            Failure::Busy(POOL_INSTANCES)
        } else if matches!(e.downcast_ref::<Trap>(), Some(Trap::Interrupt))
            || e.is::<DeadlinePassed>()
        {
            let written = stderr.contents().0;
            Failure::Timeout {
                limit: limits.call_timeout,
                stderr: running(&written) + &stderr_tail(&written) + &stopped_at(&e),
            }
        } else if let Some(reached) = e.downcast_ref::<MemoryCapReached>() {
            Failure::OutOfMemory {
                cap: reached.cap,
                trap: describe(),
            }
        } else if matches!(
            e.downcast_ref::<ResourceTableError>(),
            Some(ResourceTableError::Full)
        ) {
            Failure::TooManyResources(limits.max_resources)
        } else if let Some(panicked) = e.downcast_ref::<HostPanicked>() {
            Failure::Host(panicked.to_string())
        } else if let Some(failed) = e.downcast_ref::<crate::CapabilityError>() {
            Failure::Host(failed.to_string())
        } else if let Some(db) = e.downcast_ref::<modhost_state::Error>() {
            match db {
                modhost_state::Error::Busy { .. } => Failure::Waited(db.to_string()),
                _ => Failure::Host(db.to_string()),
            }
        } else if let Some(exit) = e.downcast_ref::<wasmtime_wasi::I32Exit>() {
            // WASI 0.2's exit passes on success or failure alone: the status the module
            // gave (`process::exit(3)`) arrives as 1, so only which of the two is said.
            Failure::Trap(format!(
                "exited ({}) instead of returning; a module's code must return from every \
                 call (WASI passes on only whether an exit succeeded, not its status){}",
                if exit.0 == 0 { "succeeding" } else { "failing" },
                stderr_tail(&stderr.contents().0)
            ))
        } else if stack_exhausted(&e) {
            Failure::StackOverflow(describe())
        } else if let Some(cap) = refused
            .cap()
            .filter(|_| matches!(e.downcast_ref::<Trap>(), Some(Trap::UnreachableCodeReached)))
        {
            // An allocator that aborts when a grow fails (Rust's does) ends the call at
            // an `unreachable`: after a refused grow, that is the cap's doing.
            Failure::OutOfMemory {
                cap,
                trap: describe(),
            }
        } else if crate::runtime::out_of_memory(&e) {
            // The system refused memory to the sandbox (too many hosts or mappings in
            // the process): the host's failure, not the module's trap.
            Failure::Host(format!(
                "{} ({})",
                describe(),
                crate::runtime::mappings_hint()
            ))
        } else {
            Failure::Trap(describe())
        };
        Error::Trapped {
            module: rawname.to_owned(),
            version: version.to_owned(),
            call: call.to_string(),
            failure,
        }
    }
}

/// A host function (an application's capability, most likely) panicked during a call.
#[derive(Debug, thiserror::Error)]
#[error("a host function panicked: {0}")]
pub(crate) struct HostPanicked(String);

impl HostPanicked {
    /// The panic's message, when it has one.
    pub(crate) fn from_payload(payload: &(dyn std::any::Any + Send)) -> Self {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(no message)".to_owned());
        HostPanicked(message)
    }
}

/// The most guest frames a trap's backtrace keeps.
pub(crate) const BACKTRACE_FRAMES: usize = 32;

/// Whether a trap is the stack running out: wasmtime's own stack limit, or, for guests that
/// keep their stack in linear memory (Rust, C), an out-of-bounds access under a backtrace
/// full of one function, which is how running off the bottom of that stack shows.
fn stack_exhausted(e: &wasmtime::Error) -> bool {
    match e.downcast_ref::<Trap>() {
        Some(Trap::StackOverflow) => true,
        Some(Trap::MemoryOutOfBounds) => {
            e.downcast_ref::<wasmtime::WasmBacktrace>()
                .is_some_and(|trace| {
                    let frames = trace.frames();
                    frames.len() >= BACKTRACE_FRAMES
                        && frames
                            .windows(2)
                            .all(|w| w[0].func_index() == w[1].func_index())
                })
        }
        _ => false,
    }
}

/// The most lines of a call's stderr a trap report shows (its end, where a traceback
/// or panic message is).
const STDERR_LINES: usize = 24;

/// The most backtrace frames a trap report shows.
const SHOWN_FRAMES: usize = 8;

/// How an SDK marks, on stderr, the author's code a call runs: a line of this and where
/// that code is (`Pyx.loop (app.py, line 21)`), written before the SDK calls it. An
/// interpreted module's backtrace shows only its interpreter's frames; this line names
/// the handler a deadline stopped. The line is the SDK's, not the author's: never shown as
/// what the guest wrote.
pub(crate) const RUNNING_MARK: &str = "[modhost] running ";

/// Where the call was, as its SDK last marked it on stderr: ` in WHERE`, or nothing.
fn running(stderr: &[u8]) -> String {
    String::from_utf8_lossy(stderr)
        .lines()
        .rev()
        .find_map(|line| line.strip_prefix(RUNNING_MARK))
        .map(|place| format!(" in {}", place.trim()))
        .unwrap_or_default()
}

/// Whether `line` of stderr is an SDK's mark rather than the author's own words.
pub(crate) fn is_mark(line: &str) -> bool {
    line.starts_with(RUNNING_MARK)
}

/// A trap as a module's author reads it: what stopped the call, the end of what the guest
/// wrote to stderr, then the author's own frames of the backtrace.
pub(crate) fn describe(e: &wasmtime::Error, stderr: &[u8]) -> String {
    let mut text = e.root_cause().to_string();
    text.push_str(&stderr_tail(stderr));
    if let Some(trace) = e.downcast_ref::<WasmBacktrace>() {
        text.push_str(&backtrace(trace.frames()));
    }
    text
}

/// The end of what a call wrote to stderr, as a report shows it after what stopped the
/// call (`\nguest stderr:` and its last lines, indented), or nothing when it wrote none.
fn stderr_tail(stderr: &[u8]) -> String {
    let mut text = String::new();
    let stderr = String::from_utf8_lossy(stderr);
    // Rust's panic hook ends with how to get a backtrace from the environment, which a
    // sandboxed module has none of: the backtrace below is the one to read.
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|line| !line.starts_with("note: run with `RUST_BACKTRACE=1`") && !is_mark(line))
        .collect();
    let blank = |line: &&str| line.trim().is_empty();
    let first = lines.iter().position(|l| !blank(l)).unwrap_or(lines.len());
    let end = lines
        .iter()
        .rposition(|l| !blank(l))
        .map_or(first, |last| last + 1);
    let lines = &lines[first..end];
    if !lines.is_empty() {
        let kept = &lines[lines.len().saturating_sub(STDERR_LINES)..];
        text.push_str("\nguest stderr");
        if kept.len() < lines.len() {
            text.push_str(&format!(
                " (its last {} of {} lines)",
                kept.len(),
                lines.len()
            ));
        }
        text.push(':');
        for line in kept {
            text.push_str("\n  ");
            text.push_str(line);
        }
    }
    text
}

/// The frames of `frames` worth an author's reading, numbered as in the full backtrace:
/// none when every frame is the language runtime's (a Python module's are CPython's, and
/// its traceback on stderr says where its own code was).
fn backtrace(frames: &[FrameInfo]) -> String {
    own_backtrace(frames).unwrap_or_else(|| {
        format!(
            "\nwasm backtrace: {} frames, all the language runtime's, the bindings' or nameless (logged at debug level)",
            frames.len()
        )
    })
}

/// Where a call stopped at its deadline was: its author's own frames of the backtrace
/// (the loop that never ended), or nothing when it has none (an interpreter's frames are
/// all the runtime's: a Python module's loop is in CPython's).
fn stopped_at(e: &wasmtime::Error) -> String {
    e.downcast_ref::<WasmBacktrace>()
        .and_then(|trace| own_backtrace(trace.frames()))
        .unwrap_or_default()
}

/// [`backtrace`]'s text when some frames are the author's own.
fn own_backtrace(frames: &[FrameInfo]) -> Option<String> {
    let own: Vec<(usize, String, &FrameInfo)> = frames
        .iter()
        .enumerate()
        .map(|(i, frame)| (i, frame_name(frame), frame))
        .filter(|(_, name, frame)| !runtime(frame, name) && !nameless(frame))
        .collect();
    if own.is_empty() {
        return None;
    }
    // A recursion repeats one frame: said once with how often, so that the frames around
    // it (the call that began it) still fit.
    let mut runs: Vec<(usize, String, &FrameInfo, usize)> = Vec::new();
    for (i, name, frame) in own {
        match runs.last_mut() {
            Some((_, last, _, times)) if *last == name => *times += 1,
            _ => runs.push((i, name, frame, 1)),
        }
    }
    let shown: usize = runs.iter().take(SHOWN_FRAMES).map(|run| run.3).sum();
    let mut text = format!(
        "\nwasm backtrace ({shown} of {} frames; the language runtime's and the bindings' left \
         out, and nameless ones; all of them are logged at debug level):",
        frames.len(),
    );
    for (i, name, frame, times) in runs.into_iter().take(SHOWN_FRAMES) {
        let module = frame.module().name().unwrap_or("<module>");
        text.push_str(&format!("\n  {i:>3}: {module}!{name}"));
        let place = frame
            .symbols()
            .iter()
            .find_map(|s| Some((s.file()?, s.line()?)));
        if let Some((file, line)) = place {
            text.push_str(&format!(" at {file}:{line}"));
        }
        if times > 1 {
            text.push_str(&format!(
                "\n       (the frame above {} more times)",
                times - 1
            ));
        }
    }
    Some(text)
}

/// A frame's function name, demangled, without the crate disambiguators (`std[d123…]::`)
/// and symbol hashes (`::h11b3…`) that only make it longer.
fn frame_name(frame: &FrameInfo) -> String {
    let Some(raw) = frame.func_name() else {
        return format!("<function {}>", frame.func_index());
    };
    let demangled = rustc_demangle::try_demangle(raw).map(|d| format!("{d:#}"));
    let raw = demangled.as_deref().unwrap_or(raw);
    let mut name = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(open) = rest.find('[') {
        let (before, after) = rest.split_at(open);
        name.push_str(before);
        match after.find(']') {
            Some(close) if after[1..close].chars().all(|c| c.is_ascii_hexdigit()) => {
                rest = &after[close + 1..];
            }
            _ => {
                name.push('[');
                rest = &after[1..];
            }
        }
    }
    name.push_str(rest);
    if let Some((head, hash)) = name.rsplit_once("::h")
        && hash.len() == 16
        && hash.chars().all(|c| c.is_ascii_hexdigit())
    {
        name.truncate(head.len());
    }
    name
}

/// Whether a frame has neither a name nor a source place: `<function 1234>` tells an
/// author nothing (a JavaScript module's engine is built without names).
fn nameless(frame: &FrameInfo) -> bool {
    frame.func_name().is_none() && frame.symbols().is_empty()
}

/// Whether a frame (named `name`) belongs to the language runtime — Rust's std, wasi-libc,
/// CPython and componentize-py's glue — or the generated bindings rather than to the
/// module's own code.
fn runtime(frame: &FrameInfo, name: &str) -> bool {
    const MODULES: &[&str] = &[
        "libpython",
        "libc.so",
        "libwasi",
        "componentize_py",
        "wasi_snapshot_preview1",
    ];
    const FUNCTIONS: &[&str] = &[
        "std::",
        "core::",
        "alloc::",
        "<std::",
        "<core::",
        "<alloc::",
        "__rust",
        "rust_",
        "__rustc::",
        "abort",
        "dlmalloc",
        "__wasi",
        "wasi::",
        "wit_bindgen",
        "cabi_",
        "_Py",
        "Py",
        "pyo3",
        "componentize_py",
    ];
    let module = frame.module().name().unwrap_or_default();
    MODULES.iter().any(|m| module.starts_with(m))
        || FUNCTIONS.iter().any(|p| name.starts_with(p))
        || name.contains("::bindings::")
        || name.contains('#')
}

#[cfg(test)]
mod tests {
    use wasmtime::{Config, Engine};

    /// `unreachable`: traps at once.
    const BOOM: &[u8] = &[0x00, 0x0b];

    #[test]
    fn a_nameless_frame_is_left_out_and_said_to_be() {
        let engine = Engine::new(&Config::new()).unwrap_or_else(|e| panic!("{e}"));
        let (mut store, boom) = crate::core_wasm::function(&engine, BOOM);
        let trap = boom
            .call(&mut store, ())
            .err()
            .unwrap_or_else(|| panic!("no trap"));
        assert!(trap.downcast_ref::<wasmtime::WasmBacktrace>().is_some());
        let said = super::describe(&trap, b"");
        assert!(
            !said.contains("<function")
                && said.contains("1 frames, all the language runtime's, the bindings' or nameless"),
            "{said}"
        );
    }
}
