//! Update sources from the administrator's side: `source`, `check-online`,
//! `showupgrades`, `download`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use modhost::{OfferStatus, SourceKind};

use crate::escape::{escape, escape_lines, escape_path};
use crate::{Context, Root};

/// The `source` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum SourceCommand {
    /// Add an update source: an https:// URL or a local directory.
    Add {
        /// A short name for it.
        name: String,
        /// The repository or document, as its --kind has it: https://… or a path (a
        /// relative one is made absolute, from the current directory, before it is kept).
        location: String,
        // The help lists every kind there is, from the one list of them.
        #[arg(long, default_value_t = SourceKind::Index, value_parser = parse_kind,
              help = format!("What it speaks: {}", SourceKind::ALL
                  .map(|kind| format!("`{kind}` ({})", kind.summary()))
                  .join(", ")))]
        kind: SourceKind,
        /// A publisher's minisign public key (`RW…`), or a minisign `.pub` file holding
        /// one: documents must then be signed by it. Repeat to pin several keys.
        #[arg(long, value_name = "KEY|FILE")]
        public_key: Vec<String>,
        /// Change an existing source (its download key is kept only while it stays on the same server).
        #[arg(long)]
        replace: bool,
    },
    /// Remove a source.
    Remove {
        /// The source's name.
        name: String,
        /// Remove it even though modules were installed from it.
        #[arg(long)]
        force: bool,
    },
    /// List the sources (download keys are never shown).
    List,
    /// Take an installed module's updates from a source from now on (a module installed
    /// from a file is otherwise never replaced by a source's).
    Attach {
        /// The module.
        rawname: String,
        /// The source's name.
        source: String,
    },
    /// Store the download key appended to a source's package URLs, e.g. 'email=…&key=…'
    /// (or forget it with --clear).
    Key {
        /// The source's name, or a module's channel (`phonebook/updateurl`, `phonebook/1`).
        name: String,
        /// The query string, or `-` to read it from the first line of standard input, where
        /// other users cannot see it in the process list.
        #[arg(required_unless_present = "clear", conflicts_with = "clear")]
        query: Option<String>,
        /// Forget the source's download key (a leaked or expired one): its downloads go
        /// without one.
        #[arg(long)]
        clear: bool,
    },
}

/// `source …`: adds, removes, lists and keys the update sources.
pub fn source(ctx: &Context, command: SourceCommand) -> Result<()> {
    // Only adding a source may make a root; the others need one with sources, and must
    // not create one behind a mistyped path.
    match command {
        SourceCommand::Add {
            name,
            location,
            kind,
            public_key,
            replace,
        } => {
            // A relative directory is taken from where the administrator stands.
            let location = if location.contains("://") {
                location
            } else {
                std::path::absolute(&location)?.display().to_string()
            };
            let keys = public_key
                .iter()
                .map(|key| public_key_text(key))
                .collect::<Result<Vec<_>>>()?;
            let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
            let (_, replaced) = ctx.change(Root::MadeIfMissing, |host| {
                host.add_source_pinned(&name, kind, &location, &keys, replace)
            })?;
            crate::interrupt::note_if_too_late();
            let document = serde_json::json!({ "added": name, "replaced": replaced });
            ctx.out.result(&document, || {
                let said = if replaced { "replaced" } else { "added" };
                format!("{said} source {}\n", escape(&name))
            })
        }
        SourceCommand::Attach { rawname, source } => {
            let host = ctx.open_existing()?;
            let before = host.attach_source(&rawname, &source)?;
            let document = serde_json::json!({
                "rawname": rawname,
                "source": source,
                "before": before,
            });
            ctx.out.result(&document, || {
                let was = match &before {
                    Some(old) if *old == source => {
                        return format!(
                            "{} already takes its updates from source `{}`\n",
                            escape(&rawname),
                            escape(&source)
                        );
                    }
                    Some(old) => format!(" (was `{}`)", escape(old)),
                    None => " (was installed from a file)".to_owned(),
                };
                format!(
                    "{} now takes its updates from source `{}`{was}\n",
                    escape(&rawname),
                    escape(&source)
                )
            })
        }
        SourceCommand::Remove { name, force } => {
            let host = ctx.open_existing()?;
            host.remove_source(&name, force)?;
            ctx.out.result(&serde_json::json!({ "removed": name }), || {
                format!("removed source {}\n", escape(&name))
            })
        }
        SourceCommand::Key {
            name, clear: true, ..
        } => {
            let had = ctx.open_existing()?.clear_source_key(&name)?;
            ctx.out.result(
                &serde_json::json!({ "source": name, "key": if had { "cleared" } else { "none" } }),
                || match had {
                    true => format!("forgot the download key of {}\n", escape(&name)),
                    false => format!("{} had no download key\n", escape(&name)),
                },
            )
        }
        SourceCommand::Key { name, query, .. } => {
            let query = query.unwrap_or_default();
            let query = if query == "-" {
                let mut line = String::new();
                std::io::stdin().read_line(&mut line)?;
                anyhow::ensure!(!line.trim().is_empty(), "no download key on standard input");
                line
            } else {
                query
            };
            ctx.open_existing()?.set_source_key(&name, &query)?;
            ctx.out.result(
                &serde_json::json!({ "source": name, "key": "stored" }),
                || format!("stored the download key of {}\n", escape(&name)),
            )
        }
        SourceCommand::List => {
            let sources = ctx.open_existing()?.sources()?;
            ctx.out.result(&sources, || {
                if sources.is_empty() {
                    return "no update sources are configured; add one with \
                            `modhost source add NAME URL`\n"
                        .to_owned();
                }
                let rows: Vec<[String; 4]> = sources
                    .iter()
                    .map(|s| {
                        let signed = if s.signed {
                            let keys: Vec<String> = s
                                .public_keys
                                .iter()
                                .map(|k| match &k.succeeded_by {
                                    Some(next) => format!("{} (succeeded by {next})", k.key_id),
                                    None => k.key_id.clone(),
                                })
                                .collect();
                            let accepted = match (s.serial, s.signed_at) {
                                (Some(serial), _) => format!(", release serial {serial} accepted"),
                                (None, Some(at)) => {
                                    format!(", signed at {} accepted", modhost_update::utc(at))
                                }
                                (None, None) => String::new(),
                            };
                            format!("signed by key ID {}{accepted}", keys.join(", "))
                        } else {
                            "unsigned".to_owned()
                        };
                        let key = if s.has_key { ", download key set" } else { "" };
                        let declared = s
                            .declared_by
                            .as_ref()
                            .map(|m| format!(", declared by {}", escape(m)))
                            .unwrap_or_default();
                        [
                            escape(&s.name).into_owned(),
                            s.kind.map_or("unknown", SourceKind::as_str).to_owned(),
                            escape(&s.url).into_owned(),
                            format!("{signed}{key}{declared}"),
                        ]
                    })
                    .collect();
                super::list::table(["NAME", "KIND", "LOCATION", "TRUST"], &rows)
            })
        }
    }
}

/// `check-online` (every offer) and `showupgrades` (upgrades only). Exits non-zero when a
/// source could not be checked, after reporting all of them.
pub fn check(ctx: &Context, upgrades_only: bool) -> Result<ExitCode> {
    // Checking reads the root: it must not create one behind a mistyped path. Where there
    // is none, no source is configured, which is the answer.
    // A named root that is not there has no sources: said, not made.
    let host = ctx.open_existing()?;
    let reports = match upgrades_only {
        true => host.check_upgrades()?,
        false => host.check_online()?,
    };
    ctx.out.result(&reports, || {
        if reports.is_empty() {
            return "no update sources are configured; add one with `modhost source add`\n"
                .to_owned();
        }
        let mut text = String::new();
        for report in &reports {
            if let Some(error) = &report.error {
                text += &format!(
                    "{}: unavailable: {}\n",
                    escape(&report.source),
                    escape_lines(error)
                );
            }
            for offer in &report.offers {
                let installed = escape(offer.installed.as_deref().unwrap_or("-"));
                let status = serde_json::to_value(offer.status)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                let gated = match (offer.gated, offer.key_given) {
                    (true, false) => " (licence key needed: `modhost source key SOURCE …`)",
                    (true, true) => " (licence key given)",
                    (false, _) => "",
                };
                text += &format!(
                    "{}: {} {} (installed {installed}): {status}{gated}\n",
                    escape(&report.source),
                    escape(&offer.rawname),
                    escape(&offer.version)
                );
                for warning in &offer.warnings {
                    text += &format!("  warning: {}\n", escape(warning));
                }
                if offer.attachable {
                    text += &format!(
                        "  help: {} is not updated from `{}`; `modhost source attach {} {}` \
                         makes it so\n",
                        escape(&offer.rawname),
                        escape(&report.source),
                        escape(&offer.rawname),
                        escape(&report.source)
                    );
                }
            }
            // What the channel offers but modhost will not take, and why: silence would
            // read as a channel offering nothing.
            for aside in &report.set_aside {
                text += &format!(
                    "{}: {} {}: set aside: {}\n",
                    escape(&report.source),
                    escape(&aside.rawname),
                    escape(&aside.version),
                    escape(&aside.reason)
                );
            }
            // A module taking its updates from a source that offers nothing of it would
            // otherwise never hear of one, silently.
            for rawname in &report.not_offered {
                text += &format!(
                    "{source}: offers no {name}, which takes its updates from it\n  \
                     help: `modhost source attach {name} SOURCE` takes them from another source\n",
                    source = escape(&report.source),
                    name = escape(rawname),
                );
            }
            // Who vouches for what the source offers, after its offers: `showupgrades`
            // lists upgrades alone.
            if let Some(trust) = report.trust.as_ref().filter(|_| !upgrades_only) {
                text += &format!(
                    "{}: {}\n",
                    escape(&report.source),
                    escape(&trust.describe())
                );
            }
        }
        let answered = reports.iter().filter(|r| r.error.is_none()).count();
        let offered = |o: &&modhost::Offer| !upgrades_only || o.status == OfferStatus::Upgrade;
        if answered > 0
            && reports
                .iter()
                .all(|r| r.offers.iter().filter(offered).count() == 0)
        {
            let nothing = if upgrades_only {
                "no upgrades available"
            } else {
                "no modules offered"
            };
            // A source that did not answer may still have something.
            let partial = if answered < reports.len() {
                " from the sources that answered"
            } else {
                ""
            };
            let aside: usize = reports.iter().map(|r| r.set_aside.len()).sum();
            let aside = if aside > 0 {
                format!(" ({aside} set aside, above)")
            } else {
                String::new()
            };
            text += &format!("{nothing}{partial}{aside}\n");
        }
        text
    })?;
    let errors = reports.iter().filter_map(|r| r.error.as_deref());
    if let Some(hint) = errors.filter_map(crate::output::flag_hint).next() {
        eprintln!("help: {hint}");
    }
    Ok(if reports.iter().any(|r| r.error.is_some()) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Arguments of `showupgrades`.
#[derive(Debug, clap::Args)]
pub struct ShowupgradesArgs {
    /// The upgrades this package directory holds (what `upgradeall --from DIR` applies),
    /// instead of the update sources'.
    #[arg(long, value_name = "DIR")]
    from: Option<PathBuf>,
}

/// `showupgrades`: the update sources' upgrades, or a package directory's.
pub fn showupgrades(ctx: &Context, args: ShowupgradesArgs) -> Result<ExitCode> {
    let Some(dir) = args.from else {
        return check(ctx, true);
    };
    let upgrades = ctx.open_existing()?.local_upgrades(Some(&dir))?;
    ctx.out.result(&upgrades, || {
        if upgrades.is_empty() {
            return format!(
                "no upgrades: `{}` holds no newer version of an installed module\n",
                escape_path(&dir)
            );
        }
        upgrades
            .iter()
            .map(|u| {
                format!(
                    "{} {} -> {} in {}\n",
                    escape(&u.rawname),
                    escape(&u.installed),
                    escape(&u.version),
                    escape_path(&u.package)
                )
            })
            .collect()
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Arguments of `download`.
#[derive(Debug, clap::Args)]
pub struct DownloadArgs {
    /// The module to download (its newest version from the first source offering it), or
    /// an https:// URL of a package.
    what: String,
    /// The package's SHA-256, required with a URL: nothing unverified is downloaded.
    #[arg(long)]
    sha256: Option<String>,
    /// The directory to write the package into, as RAWNAME-VERSION.tgz (or .zip).
    #[arg(long, default_value = ".")]
    out: PathBuf,
}

/// `download`: fetches a module's package, or a package by URL and checksum, verified.
pub fn download(ctx: &Context, args: DownloadArgs) -> Result<()> {
    let by_url = args.what.contains("://");
    // A download by URL needs no root: it is verified by its checksum alone.
    let host = if by_url {
        ctx.open_or_scratch()?
    } else {
        ctx.open_existing()?
    };
    let path = if by_url {
        let Some(sha256) = &args.sha256 else {
            anyhow::bail!("a download by URL needs --sha256 HEX to verify the package");
        };
        host.download_url(&args.what, sha256, &args.out)?
    } else {
        host.download(&args.what, &args.out)?
    };
    ctx.out.result(&serde_json::json!({ "package": path }), || {
        format!("downloaded {}\n", escape_path(&path))
    })
}

/// The text of a `--public-key` or `--next-key`: the key as given, or the contents of the
/// minisign `.pub` file it names.
pub(crate) fn public_key_text(given: &str) -> Result<String> {
    Ok(modhost_update::public_key_text(given)?)
}

/// A `--kind`: one of [`SourceKind::ALL`]'s names; the error names them all.
fn parse_kind(text: &str) -> Result<SourceKind, String> {
    text.parse()
}
