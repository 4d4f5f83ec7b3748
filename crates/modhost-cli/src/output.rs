//! How the CLI talks: status lines and module logs on stderr, results on stdout.

use std::fmt;
use std::io::{IsTerminal, Write};

use anyhow::Result;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use modhost::{Event, Host, Origin, Reporter};
use serde::Serialize;
use tracing::Level;
use tracing::field::{Field, Visit};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::filter::{FilterExt, LevelFilter, filter_fn};
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::layer::Filter;
use tracing_subscriber::prelude::*;

use crate::escape::{escape, escape_lines};
use crate::progress::Pending;

/// Crates whose records below warn never show: ureq logs every request's whole URL,
/// download key (`email=…&key=…`) included, at debug and trace, and its bytes at trace;
/// rustls logs the handshake; hyper and h2 (under `repo serve`) may log request lines,
/// query strings with licence keys included.
const QUIET_BELOW_WARN: [&str; 4] = ["ureq", "rustls", "hyper", "h2"];

/// Module log records (target `modhost::module`) and `repo serve`'s access log show at
/// info; everything else only warns, unless `MODHOST_LOG` says otherwise — except for
/// [`QUIET_BELOW_WARN`], whatever it says.
/// Every record's message and fields are shown escaped ([`EscapedFields`]): a module's
/// log records are its own text.
///
/// A server (`repo serve`) writes its records from a thread of their own, so that the
/// access log's line per request never waits for the terminal: keep the guard returned
/// until the process ends, which writes what is left.
pub fn init_tracing(server: bool) -> Option<tracing_appender::non_blocking::WorkerGuard> {
    let filter = EnvFilter::try_from_env("MODHOST_LOG").unwrap_or_else(|_| {
        EnvFilter::new(format!(
            "warn,modhost::module=info,{}=info",
            modhost_repo::serve::ACCESS_LOG
        ))
    });
    let (writer, guard) = if server {
        // Not lossy: far behind, a request waits for the log rather than go unlogged.
        let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
            .lossy(false)
            .finish(std::io::stderr());
        (BoxMakeWriter::new(writer), Some(guard))
    } else {
        (BoxMakeWriter::new(std::io::stderr), None)
    };
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .without_time()
        .fmt_fields(EscapedFields)
        .with_filter(shown(filter));
    tracing_subscriber::registry().with(layer).init();
    guard
}

/// What the log shows: what `filter` lets through, except [`QUIET_BELOW_WARN`]'s records
/// below warn. A separate filter, not directives added to `filter`: a more specific
/// directive in MODHOST_LOG (`ureq::run=trace`) would win over an added `ureq=warn`.
fn shown<S: tracing::Subscriber>(filter: EnvFilter) -> impl Filter<S> {
    let quiet = filter_fn(|meta| {
        *meta.level() <= Level::WARN
            || !QUIET_BELOW_WARN
                .iter()
                .any(|target| meta.target().starts_with(target))
    })
    // It narrows no level, so the whole filter's level is `filter`'s: `log`'s records
    // above it (cranelift logs every function it compiles) are then dropped where they
    // are made, not each asked of the filter, which took 90% of a debug build's install.
    .with_max_level_hint(LevelFilter::TRACE);
    filter.and(quiet)
}

/// Formats a record's fields as the default formatter does (the message, then
/// `name=value`, separated by spaces), each value shown escaped: the message keeps its
/// newlines and tabs, any other field is one line. A string field is shown as it is, not
/// quoted.
struct EscapedFields;

impl<'writer> FormatFields<'writer> for EscapedFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'writer>, fields: R) -> fmt::Result {
        let mut visitor = EscapingVisitor {
            writer,
            started: false,
            result: Ok(()),
        };
        fields.record(&mut visitor);
        visitor.result
    }
}

struct EscapingVisitor<'writer> {
    writer: Writer<'writer>,
    /// Whether a field was written: the next one is preceded by a space.
    started: bool,
    result: fmt::Result,
}

impl EscapingVisitor<'_> {
    fn field(&mut self, field: &Field, value: &str) {
        let name = field.name();
        // Log metadata the `log` bridge records, which the event formatter shows itself.
        if self.result.is_err() || name.starts_with("log.") {
            return;
        }
        let space = if std::mem::replace(&mut self.started, true) {
            " "
        } else {
            ""
        };
        self.result = if name == "message" {
            write!(self.writer, "{space}{}", escape_lines(value))
        } else {
            let name = name.strip_prefix("r#").unwrap_or(name);
            write!(self.writer, "{space}{name}={}", escape(value))
        };
    }
}

impl Visit for EscapingVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.field(field, value);
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.field(field, &value.to_string());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.field(field, &format!("{value:?}"));
    }
}

/// `error` and its causes, each once: many errors already show their source in their own
/// message, so a cause whose text is already there is left out.
pub fn chain(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let message = cause.to_string();
        if text.is_empty() {
            text = message;
        } else if !text.contains(&message) {
            text = format!("{text}: {message}");
        }
    }
    text
}

/// What a script can act on in an error beside its message: each reason of a refusal,
/// the modules in the way, each module.xml problem with its position, the changes made
/// before channels failed.
fn details(error: &anyhow::Error) -> serde_json::Map<String, serde_json::Value> {
    use serde_json::json;
    let mut details = serde_json::Map::new();
    let Some(error) = error
        .chain()
        .find_map(|e| e.downcast_ref::<modhost::Error>())
    else {
        return details;
    };
    if let Some(manifest) = error.manifest() {
        let problems = match manifest {
            modhost::manifest::Error::Syntax { problem, .. } => json!([problem]),
            modhost::manifest::Error::Invalid { problems, .. } => json!(problems),
        };
        details.insert("problems".to_owned(), problems);
        return details;
    }
    let (key, value) = match error {
        modhost::Error::Refused(reasons)
        | modhost::Error::Unmet { reasons, .. }
        | modhost::Error::NotDownloaded(reasons) => ("reasons", json!(reasons)),
        modhost::Error::InUse { dependents, .. } => ("dependents", json!(dependents)),
        // The module whose running handler is in the way, to wait for.
        modhost::Error::DataChanging { rawname, .. } => ("rawname", json!(rawname)),
        modhost::Error::Reload(call) => ("call", json!(call)),
        modhost::Error::Unchecked { done, failures } => {
            details.insert("changes".to_owned(), json!(done));
            ("failures", json!(failures))
        }
        modhost::Error::LeftOut { done, left_out } => {
            details.insert("changes".to_owned(), json!(done));
            ("left_out", json!(left_out))
        }
        _ => return details,
    };
    details.insert(key.to_owned(), value);
    details
}

/// The command an error ended, where what to do about it depends on it: `enable` takes no
/// packages, `upgrade` installs nothing new.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asked {
    /// `install` and `installlocal`.
    Install,
    /// `upgrade`.
    Upgrade,
    /// `upgradeall`.
    Upgradeall,
    /// `enable`.
    Enable,
    /// `rollback`.
    Rollback,
    /// Any other.
    Other,
}

/// What to do about `error` with this command line's own flags: the library speaks of its
/// options (forcing a change, waiting for the lock, a package directory), the CLI of the
/// flags that set them.
pub fn hint(error: &anyhow::Error) -> Option<&'static str> {
    hint_after(error, Asked::Other)
}

/// [`hint`], for what `asked` ran.
pub fn hint_after(error: &anyhow::Error, asked: Asked) -> Option<&'static str> {
    if let Some(modhost_repo::Error::Republished { .. }) = error
        .chain()
        .find_map(|e| e.downcast_ref::<modhost_repo::Error>())
    {
        return Some("--republish publishes it anyway");
    }
    // A full disk under anything but a lifecycle call's copy of /data (which says what
    // needs no copy): every change is all or nothing, and so is publishing.
    let full = error.chain().any(|e| {
        e.downcast_ref::<std::io::Error>().is_some_and(|io| {
            matches!(
                io.kind(),
                std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
            )
        })
    });
    if full {
        return Some("nothing was changed: free some space on that disk, then run it again");
    }
    let error = error
        .chain()
        .find_map(|e| e.downcast_ref::<modhost::Error>())?;
    Some(match error {
        modhost::Error::Locked { .. } => "without --no-wait, modhost waits for the lock",
        modhost::Error::NoRoomForData {
            operation: modhost::StagedCall::Uninstall,
            ..
        } => "`modhost delete` removes it without running its code, and needs no copy",
        modhost::Error::NoRoomForData {
            operation: modhost::StagedCall::Disable,
            ..
        } => "`modhost disable --force` disables it without running its code, and needs no copy",
        modhost::Error::InUse { .. } | modhost::Error::Protected { .. } => "--force does it anyway",
        // Requirements the plan cannot meet, and nothing else (a downgrade `--force`
        // does not make): what FreePBX's module admin overrides too. What mends it is
        // said first, where the library names it: a requirement disabled is enabled with it;
        // one not installed is installed with it.
        modhost::Error::Unmet { mends, .. } if mends.contains(&modhost::Mend::Enable) => {
            "enable what it requires with it (`modhost enable` takes several modules), or \
             --force does it anyway, setting the requirements aside"
        }
        modhost::Error::Unmet { mends, .. } if mends.contains(&modhost::Mend::Install) => {
            match asked {
                // An upgrade installs nothing new, and enable takes no packages.
                Asked::Upgrade | Asked::Upgradeall | Asked::Enable | Asked::Rollback => {
                    "install what it requires first (`modhost install` with its package, or \
                     --from DIR to bring it from a package directory), or --force does it \
                     anyway, setting the requirements aside"
                }
                Asked::Install | Asked::Other => {
                    "install what it requires with it (give its packages too, or --from DIR to \
                     bring them from a package directory), or --force does it anyway, setting \
                     the requirements aside"
                }
            }
        }
        modhost::Error::Unmet { .. } => "--force does it anyway, setting the requirements aside",
        modhost::Error::NoPackageDir if asked == Asked::Upgradeall => {
            "give --from DIR, or set `packages` in modhost.toml; `upgradeall --online` upgrades \
             from the update sources instead"
        }
        modhost::Error::NoPackageDir => "give --from DIR, or set `packages` in modhost.toml",
        modhost::Error::NoRoot(_) => {
            "check --root and MODHOST_ROOT; `modhost install PACKAGE` creates a root"
        }
        modhost::Error::SourceExists { .. } => "use `source add --replace` to change it",
        modhost::Error::NotAPackageDir { is_file: true, .. } => match asked {
            Asked::Install | Asked::Upgrade | Asked::Upgradeall => {
                "--from names a directory of packages: give a package file itself without it"
            }
            Asked::Enable | Asked::Rollback | Asked::Other => {
                "`modhost manifest FILE` describes one package"
            }
        },
        modhost::Error::SourceInUse { .. } => "--force removes the source anyway",
        error if error.failed_call() == Some("disable()") => {
            "`disable --force` disables it without running its code, keeping its data"
        }
        error if error.failed_call() == Some("uninstall()") => {
            "`delete` removes it without running its code, and its data with it"
        }
        // The module's own code refused, in words of its own shown above: nothing of the
        // attempt was kept, and its stderr (a traceback) is at debug level.
        error
            if matches!(
                error.failed_call(),
                Some("enable()" | "install()" | "upgrade()")
            ) =>
        {
            "nothing of the attempt was kept (an upgrade keeps the version before it); \
             `MODHOST_LOG=modhost::module=debug` shows what the module wrote to stderr"
        }
        _ => return flag_hint(&error.to_string()),
    })
}

/// The flag for what an error message, as text, says to set: update errors reach the CLI
/// as text inside reports and refusals.
pub fn flag_hint(message: &str) -> Option<&'static str> {
    if message.contains(modhost_update::PRIVATE_CA) {
        return Some("or pass the CA's certificate with --ca-cert FILE");
    }
    // A server refusing a download for want of a key (a licence group, a Joomla download
    // ID) is given one per source.
    let refused = message.contains("the server refused")
        && (message.contains("(error 401)") || message.contains("(error 403)"))
        || message.contains("HTTP status 401")
        || message.contains("HTTP status 403");
    refused.then_some(
        "if the server wants a download or licence key, give it to the source, or \
         check the one it has with the publisher: `modhost source key SOURCE 'email=…&key=…'` \
         replaces it",
    )
}

/// Text or JSON output, chosen once by `--json`.
pub struct Output {
    json: bool,
}

impl Output {
    /// JSON output when `json`, text otherwise.
    pub fn new(json: bool) -> Self {
        Output { json }
    }

    /// Prints `value` as the command's JSON document, or `text` when not in JSON mode.
    pub fn result<T: Serialize>(&self, value: &T, text: impl FnOnce() -> String) -> Result<()> {
        let mut stdout = std::io::stdout().lock();
        if self.json {
            // Written whole first: a reader gone (`| head`) is then the write's own error,
            // which the command ends on quietly.
            let document = serde_json::to_string_pretty(value)?;
            writeln!(stdout, "{document}")?;
        } else {
            write!(stdout, "{}", text())?;
        }
        Ok(())
    }

    /// Reports an error that ends the command with a status other than 1: on stderr
    /// (escaped: it names packages, modules and what they said), and as `{"error": …}`
    /// in JSON mode (exact).
    pub fn error(&self, error: &anyhow::Error) -> Result<()> {
        self.error_with_hint(error, hint(error))
    }

    /// [`Output::error`] for what `asked` ran.
    pub fn error_after(&self, error: &anyhow::Error, asked: Asked) -> Result<()> {
        self.error_with_hint(error, hint_after(error, asked))
    }

    /// [`Output::error`], with `hint` (what to do about it, which only the command knows)
    /// in place of the one the error's kind suggests.
    pub fn error_with_hint(&self, error: &anyhow::Error, hint: Option<&str>) -> Result<()> {
        let message = chain(error);
        if self.json {
            let mut document = details(error);
            document.insert("error".to_owned(), message.clone().into());
            if let Some(hint) = hint {
                document.insert("hint".to_owned(), hint.into());
            }
            // A stdout that cannot be written (a full disk, `/dev/full`) still leaves the
            // error on stderr.
            let _ = writeln!(std::io::stdout(), "{}", serde_json::Value::Object(document));
        }
        writeln!(std::io::stderr(), "error: {}", escape_lines(&message))?;
        if let Some(hint) = hint {
            writeln!(std::io::stderr(), "help: {hint}")?;
        }
        Ok(())
    }

    /// Gives `host` a reporter that shows progress on stderr; in JSON mode only why
    /// nothing happens (waiting for the lock), since a script still deserves to know.
    pub fn with_reporter(&self, host: Host) -> Host {
        host.with_reporter(Box::new(Status {
            waiting_only: self.json,
            bar: Default::default(),
            loading: Default::default(),
        }))
    }
}

/// Cargo-style status lines: a right-aligned verb, then what it applies to, escaped; a
/// progress bar while a download runs (drawn only on a terminal).
struct Status {
    waiting_only: bool,
    /// The bar of the download under way.
    bar: std::sync::Mutex<Option<ProgressBar>>,
    /// The compilation under way, shown once it lasts.
    loading: std::sync::Mutex<Option<Pending>>,
}

impl Status {
    fn bar(&self) -> std::sync::MutexGuard<'_, Option<ProgressBar>> {
        self.bar
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn loading(&self) -> std::sync::MutexGuard<'_, Option<Pending>> {
        self.loading
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Reporter for Status {
    fn report(&self, event: Event) {
        if self.waiting_only && !matches!(event, Event::Waiting { .. }) {
            return;
        }
        let (verb, what) = match event {
            Event::Progress {
                received, total, ..
            } => {
                if let Some(bar) = self.bar().as_ref() {
                    if let Some(total) = total {
                        bar.set_length(total);
                    }
                    bar.set_position(received);
                }
                return;
            }
            Event::Verified { rawname, bytes } => {
                if let Some(bar) = self.bar().take() {
                    bar.finish_and_clear();
                }
                ("Verified", format!("{rawname} ({bytes} bytes)"))
            }
            Event::Waiting { lock, holder } => (
                "Waiting",
                format!(
                    "for another modhost process to finish ({})",
                    modhost::held(&lock, holder)
                ),
            ),
            Event::Recovered { summary } => ("Recovered", summary),
            Event::AlreadyIn { rawname, status } => {
                ("Unchanged", format!("`{rawname}` is already {status}"))
            }
            Event::Unchanged {
                rawname,
                version,
                differs: None,
            } => (
                "Unchanged",
                format!("`{rawname}` {version} is already installed (--reinstall runs it again)"),
            ),
            Event::Unchanged {
                rawname,
                version,
                differs: Some(what),
            } => (
                "Unchanged",
                format!(
                    "`{rawname}` {version} is installed, and this package of the same version \
                     holds another {what}: raise <version> in module.xml to upgrade to it \
                     (--reinstall replaces the installed one as it is)"
                ),
            ),
            Event::Requests {
                rawname,
                capability,
                granted: true,
            } => ("Granted", format!("{rawname}: {capability}")),
            Event::Requests {
                rawname,
                capability,
                granted: false,
            } => (
                "Requests",
                format!(
                    "{rawname}: {capability} (not granted: use --grant or `modhost grant {rawname}`)"
                ),
            ),
            Event::Requires {
                rawname,
                dependency,
                source,
            } => (
                "Adding",
                format!("{dependency} from {source}: {rawname} requires it"),
            ),
            Event::Warning { rawname, message } => ("Warning", format!("{rawname}: {message}")),
            Event::Revoked {
                rawname,
                capability,
            } => (
                "Revoked",
                format!("{rawname}: {capability} (its module.xml no longer asks for it)"),
            ),
            // A module directory is copied and checked, not unpacked.
            Event::Unpacking { package } if package.is_dir() => {
                ("Reading", package.display().to_string())
            }
            Event::Unpacking { package } => ("Unpacking", package.display().to_string()),
            Event::Downloading {
                rawname,
                version,
                source,
            } => {
                let what = format!("{rawname} {version} from {source}");
                let _ = writeln!(std::io::stderr(), "{:>12} {}", "Downloading", escape(&what));
                let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
                bar.set_style(
                    ProgressStyle::with_template(
                        "{spinner} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
                );
                *self.bar() = Some(bar);
                return;
            }
            Event::Loading { rawname } => {
                *self.loading() = Some(Pending::loading(escape(&rawname).into_owned()));
                return;
            }
            Event::Loaded { rawname, origin } => {
                let took = self.loading().take().map(Pending::finish);
                match (origin, took) {
                    (Origin::Compiled, Some(took)) => (
                        "Compiled",
                        format!("{rawname} in {:.1} s", took.as_secs_f64()),
                    ),
                    (Origin::Compiled, None) => ("Compiled", rawname),
                    (Origin::Cached, _) => return,
                }
            }
            Event::Running {
                verb,
                rawname,
                version,
            } => (verb, format!("{rawname} {version}")),
        };
        // What a status line names (packages, modules, paths, warnings) is not the CLI's.
        let _ = writeln!(std::io::stderr(), "{verb:>12} {}", escape(&what));
    }
}

#[cfg(test)]
mod tests;
