//! `new`: a module directory to start from, in Rust, Python or JavaScript.

use std::path::PathBuf;

use anyhow::Result;

use crate::escape::escape_path;
use crate::output::Output;

/// Arguments of `new`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The module's rawname (lower-case letters, digits and `_`).
    name: String,
    /// The language: rust, python or js.
    #[arg(long, default_value = "rust", value_parser = parse_lang)]
    lang: modhost::Lang,
    /// Where to write it (default: a directory named after the module).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

fn parse_lang(text: &str) -> Result<modhost::Lang, String> {
    text.parse()
}

/// Writes the new module's directory and says how to build it.
pub fn run(out: &Output, args: Args) -> Result<()> {
    let dir = args.dir.unwrap_or_else(|| PathBuf::from(&args.name));
    let files = modhost::new_module(&dir, &args.name, args.lang)?;
    let document = serde_json::json!({ "dir": dir, "files": files });
    // Written where the command ran (`--dir .`): no directory to change to first.
    let here = std::env::current_dir()
        .and_then(|cwd| Ok(cwd == std::fs::canonicalize(&dir)?))
        .unwrap_or(false);
    out.result(&document, || {
        let cd = match here {
            true => String::new(),
            false => format!("  cd {}\n", shell_quoted(&escape_path(&dir))),
        };
        format!(
            "wrote {} ({} files). Next:\n{cd}  ./build.sh\n  modhost install {}-0.1.0.tgz\n  modhost hook {}.hello --payload world\n",
            escape_path(&dir),
            files.len(),
            args.name,
            args.name
        )
    })
}

/// `text` as a shell reads it back as one word: as it is when it holds only characters no
/// shell treats specially, else in single quotes.
fn shell_quoted(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_./-+,:@%=".contains(&b));
    if plain {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::shell_quoted;

    #[test]
    fn a_directory_is_shown_as_a_shell_reads_it_back() {
        assert_eq!(shell_quoted("call_log"), "call_log");
        assert_eq!(shell_quoted("../mods/pb-1.0"), "../mods/pb-1.0");
        assert_eq!(shell_quoted("my mod"), "'my mod'");
        assert_eq!(shell_quoted("it's"), r"'it'\''s'");
        assert_eq!(shell_quoted("$HOME"), "'$HOME'");
    }
}
