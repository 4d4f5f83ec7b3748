//! The sentences errors are said in: lists of modules, changes and failures, and what
//! a message quotes of a caller's text.

use std::path::Path;

/// Which lock is held, and by which process when it is known.
pub fn held(lock: &Path, holder: Option<u32>) -> String {
    match holder {
        Some(pid) => format!("process {pid} holds lock `{}`", lock.display()),
        None => format!("lock `{}` is held", lock.display()),
    }
}

/// The modules of [`Error::SourceInUse`], quoted, with their verb: "`a`, `b` are".
pub(super) fn names(modules: &[String]) -> String {
    let quoted: Vec<String> = modules.iter().map(|m| format!("`{m}`")).collect();
    let verb = if modules.len() == 1 { "is" } else { "are" };
    format!("{} {verb}", quoted.join(", "))
}

/// [`Error::Reload`]'s message: the handler and its error, which names the module.
pub(super) fn reload_failure(call: &crate::HookCall) -> String {
    format!(
        "get_config handler `{}` (priority {}) failed: {}",
        call.handler,
        call.priority,
        call.error.as_deref().unwrap_or("no message")
    )
}

/// The most of a caller's text a message quotes.
const QUOTED: usize = 200;

/// `text` as a message quotes it: its start, and how long it was, when it is long (a name
/// or an answer of megabytes an application or a module passed).
pub fn shortened(text: &str) -> std::borrow::Cow<'_, str> {
    if text.len() <= QUOTED {
        return text.into();
    }
    let end = (0..=QUOTED)
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    format!("{}… ({} bytes in all)", &text[..end], text.len()).into()
}

/// [`Error::LeftOut`]'s message: what was done, then every package left out.
pub(super) fn left_out_message(done: &[crate::Change], left_out: &[String]) -> String {
    let done = match done.is_empty() {
        true => "nothing was changed".to_owned(),
        false => {
            let changes: Vec<String> = done
                .iter()
                .map(|c| {
                    let version = c.to.as_deref().unwrap_or("?");
                    format!("{} `{}` {version}", c.action, c.rawname)
                })
                .collect();
            changes.join(", ")
        }
    };
    let left_out: String = left_out.iter().map(|f| format!("\n  - {f}")).collect();
    format!(
        "{done}; these packages were left out, each for the reason given (a package \
         refused, or what it requires not met here, even with the rest of the package \
         directory):{left_out}"
    )
}

/// [`Error::Unchecked`]'s message: what was upgraded, then every channel that failed.
pub(super) fn unchecked(done: &[crate::Change], failures: &[String]) -> String {
    let upgraded = if done.is_empty() {
        "nothing was upgraded".to_owned()
    } else {
        let changes: Vec<String> = done
            .iter()
            .map(|c| format!("`{}` to {}", c.rawname, c.to.as_deref().unwrap_or("?")))
            .collect();
        format!("upgraded {}", changes.join(", "))
    };
    let failures: String = failures.iter().map(|f| format!("\n  - {f}")).collect();
    format!(
        "{upgraded}; these channels could not be checked, or what they offer could not be \
         used, so their modules may be out of date:{failures}"
    )
}

/// What [`Error::NotInstalled`] adds of a module installed under a name near the one
/// asked for.
pub(super) fn near(near: Option<&str>) -> String {
    near.map(|near| format!(" (did you mean `{near}`?)"))
        .unwrap_or_default()
}

/// `bytes` in mebibytes, to one decimal: a size an administrator frees room for.
pub(crate) fn mebibytes(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}
