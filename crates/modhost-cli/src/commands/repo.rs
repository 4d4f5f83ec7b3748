//! `repo`: the publisher's side — build a repository of static files, serve it over
//! HTTPS, make signing keys and licence keys.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;
use clap::builder::TypedValueParser as _;
use modhost_repo::{Groups, SecretKey, serve};

use crate::Context;
use crate::commands::online::public_key_text;
use crate::escape::escape_path;

/// The `repo` subcommands: the publisher's side.
#[derive(Debug, clap::Subcommand)]
pub enum RepoCommand {
    /// Build a repository from a directory of packages: OUT/public to publish, OUT/private to keep.
    ///
    /// OUT/public holds release.json, index.json, packages/, freepbx/*.json, joomla/*.xml
    /// and a2/ (each document with its .minisig when signing): upload it to any web server
    /// or CDN. release.json names every other document with its SHA-256, a serial that
    /// grows with every build and a validity end: signed clients refuse an older serial
    /// and, past its validity, the whole release, so rebuild at least every --valid-for.
    /// With a groups.toml beside the packages, OUT/private holds the licence groups'
    /// secrets and their gated packages: it is read by `repo serve` alone; never upload
    /// it. Each build goes to OUT/builds/SERIAL and OUT/current is switched to it in one
    /// step; OUT/public and OUT/private are links through it.
    Build {
        /// The directory of packages (and an optional groups.toml of licence groups).
        dir: PathBuf,
        /// Where to write the repository: OUT/public and OUT/private.
        #[arg(long)]
        out: PathBuf,
        /// A signing key file (from `repo keygen`): signs every document (`.minisig`).
        #[arg(long)]
        sign: Option<PathBuf>,
        /// The https:// URL the repository will be served at, for the FreePBX and Joomla
        /// files (clients fetch over HTTPS only).
        #[arg(long)]
        base_url: Option<String>,
        /// The host application the Joomla files target (`<targetplatform name>`): hosts
        /// whose modhost.toml declares `[platform] name` see only updates for that name.
        #[arg(long, value_name = "NAME", default_value = modhost_update::DEFAULT_PLATFORM)]
        platform: String,
        /// How long clients accept the release: seconds, or a number with s, m, h or d;
        /// at most 366 days (expiry is what keeps a frozen mirror from being believed).
        #[arg(long, value_name = "DURATION", default_value = "7d", value_parser = parse_duration)]
        valid_for: std::time::Duration,
        /// Announce the publisher's next public key (`RW…`, or a minisign .pub file) in
        /// the release signed by --sign: clients pin it beside the current key, and drop
        /// the current one once a release signed by the next arrives.
        #[arg(long, value_name = "KEY|FILE", requires = "sign")]
        next_key: Option<String>,
        /// Publish again, with other bytes, a version the last build in OUT published.
        /// Refused without it: hosts that installed the first never take the second, and
        /// caches go on serving the first. Only when no host can have taken it.
        #[arg(long)]
        republish: bool,
    },
    /// Serve a built repository over HTTPS, with licence checks for gated groups.
    ///
    /// Serves OUT/public as it is, and the packages of licence-gated groups from
    /// OUT/private, to requests carrying a valid e-mail and licence key
    /// (`?email=…&key=…`); anything else gets a JSON `{"status":"ko",…}` refusal. Prints
    /// the URL it listens at once it does (with --json, `{"listening": URL}`). SIGTERM or
    /// Ctrl-C stops it once the answers under way are sent.
    Serve {
        /// The --out directory of `repo build`.
        dir: PathBuf,
        /// Address and port; port 0 picks a free one (the address is printed).
        #[arg(long, default_value = "127.0.0.1:8443")]
        listen: String,
        /// The certificate chain (PEM).
        #[arg(long)]
        tls_cert: PathBuf,
        /// The private key (PEM).
        #[arg(long)]
        tls_key: PathBuf,
        /// How many connections are served at once; a client beyond them is answered
        /// 503 with Retry-After (and its connection closed), to come back later.
        #[arg(long, default_value_t = serve::DEFAULT_MAX_CONNECTIONS,
              value_parser = clap::value_parser!(u16).range(1..).map(usize::from))]
        max_connections: usize,
        /// How many of them one client (an address; IPv6 by its /64) may hold at once;
        /// beyond, it too is answered 503. Default: half of --max-connections.
        /// Behind a proxy, whose connections all come from it, give it them all.
        #[arg(long, value_parser = clap::value_parser!(u16).range(1..).map(usize::from))]
        max_per_client: Option<usize>,
        /// Seconds a client has to send its request; an answer it stops reading is
        /// given six times as long to move again. At most 3600.
        #[arg(long, default_value_t = serve::DEFAULT_TIMEOUT.as_secs(),
              value_parser = clap::value_parser!(u64).range(1..=serve::MAX_TIMEOUT.as_secs()))]
        timeout_secs: u64,
    },
    /// Make a signing key: writes the secret key file, prints the public key to pin.
    Keygen {
        /// The secret key file to create (mode 0600); the minisign public key goes to
        /// `OUT.pub`.
        #[arg(long)]
        out: PathBuf,
    },
    /// Make a licence-group secret: prints 32 random bytes as 64 hex digits.
    ///
    /// Put it in groups.toml as the group's `secret = "…"` (beside the packages; `repo
    /// build` copies it to OUT/private). Licence keys are HMACs under it: keep it as
    /// secret as a signing key. `repo build` and `repo serve` refuse a secret that is not
    /// at least 32 random bytes in hex (64 digits) or base64 (43 characters or more), or
    /// whose bytes repeat or follow a pattern. Changing a group's secret changes every
    /// licence key of the group.
    LicenceSecret,
    /// Print the licence key of an e-mail address for a licence group.
    LicenceKey {
        /// The groups.toml holding the group's secret (beside the packages, or
        /// OUT/private/groups.toml).
        #[arg(long)]
        groups: PathBuf,
        /// The group.
        group: String,
        /// The customer's e-mail address.
        email: String,
    },
}

/// Runs one `repo` subcommand.
pub fn run(ctx: &Context, command: RepoCommand) -> Result<()> {
    match command {
        RepoCommand::Build {
            dir,
            out,
            sign,
            base_url,
            platform,
            valid_for,
            next_key,
            republish,
        } => {
            let next_key = match next_key {
                Some(given) => Some(
                    modhost_update::PublicKey::parse(&public_key_text(&given)?)
                        .map_err(|e| anyhow::anyhow!("--next-key: {e}"))?,
                ),
                None => None,
            };
            let key = sign.as_deref().map(SecretKey::read).transpose()?;
            let options = modhost_repo::Options {
                key: key.as_ref(),
                base_url: base_url.as_deref(),
                platform: &platform,
                valid_for,
                next_key: next_key.as_ref(),
                republish,
            };
            let built = modhost_repo::build_with(&dir, &out, &options)?;
            for warning in &built.warnings {
                let hint = if warning.starts_with("no base URL") {
                    " (give --base-url)"
                } else {
                    ""
                };
                eprintln!("warning: {}{hint}", crate::escape::escape_lines(warning));
            }
            ctx.out.result(&built, || {
                let signed = if built.signed { ", signed" } else { "" };
                let private = match &built.private {
                    Some(private) => format!(
                        "; keep {} (licence secrets, gated packages) for `repo serve` alone",
                        escape_path(private)
                    ),
                    None => String::new(),
                };
                let next = match &built.next_key {
                    Some(next) => format!(
                        "; it announces the next key ID {}",
                        modhost_update::PublicKey::parse(next)
                            .map_or_else(|_| next.clone(), |k| k.key_id())
                    ),
                    None => String::new(),
                };
                format!(
                    "built {} with {} packages{signed}, release serial {} valid until {}: \
                     publish {}{private}{next}\n",
                    escape_path(&out),
                    built.modules.len(),
                    built.serial,
                    modhost_update::utc(built.valid_until),
                    escape_path(&built.public)
                )
            })
        }
        RepoCommand::Serve {
            dir,
            listen,
            tls_cert,
            tls_key,
            max_connections,
            max_per_client,
            timeout_secs,
        } => {
            let mut server = serve::Server::bind(&dir, &listen, &tls_cert, &tls_key)?
                .max_connections(max_connections)
                .timeout(std::time::Duration::from_secs(timeout_secs));
            if let Some(max) = max_per_client {
                server = server.max_per_client(max);
            }
            let address = server.local_addr()?;
            let url = format!("https://{address}");
            // Printed before serving, for whoever started the server to read: the port
            // may have been picked by the system.
            ctx.out
                .result(&serde_json::json!({ "listening": url }), || {
                    format!("listening on {url}\n")
                })?;
            std::io::stdout().flush()?;
            server.run()?;
            Ok(())
        }
        RepoCommand::Keygen { out } => {
            let (key, pub_file) = SecretKey::generate_files(&out)?;
            let public = key.public().encode();
            ctx.out.result(
                &serde_json::json!({
                    "secret_key_file": out,
                    "public_key_file": pub_file,
                    "public_key": public
                }),
                || format!("{public}\n"),
            )
        }
        RepoCommand::LicenceSecret => {
            let secret = modhost_repo::generate_secret();
            ctx.out
                .result(&serde_json::json!({ "secret": secret }), || {
                    format!("{secret}\n")
                })
        }
        RepoCommand::LicenceKey {
            groups,
            group,
            email,
        } => {
            let key = Groups::licence_key_in(&groups, &group, &email)?;
            ctx.out
                .result(&serde_json::json!({ "email": email, "key": key }), || {
                    format!("{key}\n")
                })
        }
    }
}

/// A `--valid-for`: seconds, or a whole number with `s`, `m`, `h` or `d`.
fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((at, _)) => text.split_at(at),
        None => (text, "s"),
    };
    let scale = match unit.trim() {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        other => {
            return Err(format!(
                "`{other}` is not a unit: use s, m, h or d (as in 7d)"
            ));
        }
    };
    let not_a_duration = || format!("`{text}` is not a positive duration, such as 7d or 36h");
    let too_long = || format!("`{text}` is far longer than any release may be valid for");
    let number = match number.parse::<u64>() {
        Ok(number) => number,
        // All digits, and still no u64: too long, not malformed.
        Err(_) if !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()) => {
            return Err(too_long());
        }
        Err(_) => return Err(not_a_duration()),
    };
    let seconds = number.checked_mul(scale).ok_or_else(too_long)?;
    if seconds == 0 {
        return Err(not_a_duration());
    }
    Ok(std::time::Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory as _, Parser as _};

    use super::RepoCommand;

    /// `modhost repo` alone, to parse and render its subcommands.
    #[derive(Debug, clap::Parser)]
    #[command(name = "repo")]
    struct Repo {
        #[command(subcommand)]
        command: RepoCommand,
    }

    /// The long help of `repo SUBCOMMAND`, its words joined by single spaces: where clap
    /// wraps it depends on the terminal.
    fn help(subcommand: &str) -> String {
        let mut command = Repo::command();
        command
            .find_subcommand_mut(subcommand)
            .map(|c| c.render_long_help().to_string())
            .unwrap_or_default()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn a_duration_too_long_is_said_to_be_and_a_malformed_one_malformed() {
        use super::parse_duration;
        assert_eq!(
            parse_duration("36h"),
            Ok(std::time::Duration::from_secs(36 * 3600))
        );
        for text in [
            "9999999999999999d",
            "99999999999999999999d",
            "99999999999999999999",
        ] {
            let err = parse_duration(text).err().unwrap_or_default();
            assert!(err.contains("far longer than any release"), "{text}: {err}");
        }
        for text in ["0d", "d", "0"] {
            let err = parse_duration(text).err().unwrap_or_default();
            assert!(err.contains("is not a positive duration"), "{text}: {err}");
        }
    }

    #[test]
    fn serve_help_says_connections_beyond_the_bound_get_503() {
        let serve = help("serve");
        assert!(
            serve.contains("--max-connections")
                && serve.contains("503 with Retry-After")
                && !serve.contains("unanswered"),
            "{serve}"
        );
    }

    #[test]
    fn licence_secret_is_a_command_explained_in_its_help() {
        let parsed = Repo::try_parse_from(["repo", "licence-secret"]);
        assert!(
            matches!(
                parsed,
                Ok(Repo {
                    command: RepoCommand::LicenceSecret
                })
            ),
            "{parsed:?}"
        );
        let text = help("licence-secret");
        assert!(
            text.contains("32 random bytes") && text.contains("groups.toml"),
            "{text}"
        );
    }
}
