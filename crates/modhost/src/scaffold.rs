//! `modhost new`: a module directory that builds and packs with one command, in Rust,
//! Python or JavaScript. It holds a copy of the SDK and of the WIT contract, so it builds anywhere,
//! with no path back into this repository.

use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// The componentize-py release Python modules are built with: the one the tests build
/// with, pinned in every generated `build.sh`.
pub const COMPONENTIZE_PY_VERSION: &str = "0.25.1";

/// The componentize-js release JavaScript modules are built with, pinned in every
/// generated `package.json` and `build.sh`.
pub const COMPONENTIZE_JS_VERSION: &str = "0.23.0";

/// The language a new module is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// Rust, with the Rust SDK (`modhost-sdk`).
    Rust,
    /// Python, with the Python SDK (`modhost_sdk`) and componentize-py.
    Python,
    /// JavaScript, with the JavaScript SDK (`modhost_sdk.js`) and componentize-js.
    Js,
}

impl std::str::FromStr for Lang {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<Self, String> {
        match text.to_ascii_lowercase().as_str() {
            "rust" | "rs" => Ok(Lang::Rust),
            "python" | "py" => Ok(Lang::Python),
            "js" | "javascript" => Ok(Lang::Js),
            other => Err(format!(
                "`{other}` is not a language modules are written in here (rust, python, js)"
            )),
        }
    }
}

/// The contract every module builds against.
const WIT: &str = include_str!("../../../wit/v0.1.0/module.wit");
const MODULE_XML: &str = include_str!("../templates/module.xml");
const RUST_CARGO: &str = include_str!("../templates/rust/Cargo.toml");
/// Every dependency of a new Rust module pinned at the versions tested here: the module's
/// first build resolves nothing, and an author's later additions keep these.
const RUST_LOCK: &str = include_str!("../templates/rust/Cargo.lock");
const RUST_SDK_CARGO: &str = include_str!("../templates/rust/sdk.Cargo.toml");
/// The Rust SDK's sources, by where a new module holds them: every file of
/// `crates/modhost-sdk/src` (a test checks none is left out).
const RUST_SDK: [(&str, &str); 6] = [
    (
        "sdk/src/lib.rs",
        include_str!("../../modhost-sdk/src/lib.rs"),
    ),
    (
        "sdk/src/module.rs",
        include_str!("../../modhost-sdk/src/module.rs"),
    ),
    ("sdk/src/db.rs", include_str!("../../modhost-sdk/src/db.rs")),
    (
        "sdk/src/dispatch.rs",
        include_str!("../../modhost-sdk/src/dispatch.rs"),
    ),
    ("sdk/src/kv.rs", include_str!("../../modhost-sdk/src/kv.rs")),
    (
        "sdk/src/log.rs",
        include_str!("../../modhost-sdk/src/log.rs"),
    ),
];
const RUST_LIB: &str = include_str!("../templates/rust/src/lib.rs");
const RUST_BUILD: &str = include_str!("../templates/rust/build.sh");
const PYTHON_SDK: &str = include_str!("../../../sdk/python/modhost_sdk/__init__.py");
const PYTHON_APP: &str = include_str!("../templates/python/app.py");
const PYTHON_BUILD: &str = include_str!("../templates/python/build.sh");
const JS_SDK: &str = include_str!("../../../sdk/js/modhost_sdk.js");
const JS_APP: &str = include_str!("../templates/js/app.js");
const JS_PACKAGE: &str = include_str!("../templates/js/package.json");
/// componentize-js's own dependencies pinned, as `npm install` found them when the
/// version in `package.json` was tested here.
const JS_LOCK: &str = include_str!("../templates/js/package-lock.json");
const JS_BUILD: &str = include_str!("../templates/js/build.sh");
/// The lines of every build.sh that find the modhost packing the module.
const FIND_MODHOST: &str = include_str!("../templates/find_modhost.sh");
const RUST_GITIGNORE: &str = include_str!("../templates/rust/gitignore");
const PYTHON_GITIGNORE: &str = include_str!("../templates/python/gitignore");
const JS_GITIGNORE: &str = include_str!("../templates/js/gitignore");

/// Writes a new module `name` in `lang` into the directory `dir` (which must not exist
/// yet): module.xml with a `get_config` handler and one hook, the source, a copy of the
/// SDK and the WIT, and `build.sh`, which builds and packs it. Returns the files written.
pub fn new_module(dir: &Path, name: &str, lang: Lang) -> Result<Vec<PathBuf>> {
    if name.len() > 64 {
        return Err(Error::Refused(vec![format!(
            "`{}…` is not a module name: a rawname has at most 64 characters",
            &name[..name.floor_char_boundary(16)]
        )]));
    }
    // Stricter than a rawname: the name is also the source's identifier in every
    // language, where `-` is no part of one.
    if !modhost_manifest::is_valid_rawname(name)
        || !name.starts_with(|c: char| c.is_ascii_lowercase())
        || name.contains('-')
    {
        // A rawname may hold `-`, a new module's may not: it names the source's
        // identifiers too. The nearest name that works is suggested.
        let nearest: String = name
            .to_ascii_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let suggestion = match modhost_manifest::is_valid_rawname(&nearest)
            && nearest.starts_with(|c: char| c.is_ascii_lowercase())
        {
            true => format!(" (`{nearest}`, say)"),
            false => String::new(),
        };
        return Err(Error::Refused(vec![format!(
            "`{name}` is not a module name: lower-case letters, digits and `_`, starting with a \
             letter{suggestion}; `-` is left out, since the name is also an identifier in the \
             module's source"
        )]));
    }
    // An empty directory (made beforehand, or by an editor) is as good as none.
    let empty = std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_none());
    if std::fs::symlink_metadata(dir).is_ok() && !empty {
        return Err(Error::Refused(vec![format!(
            "`{}` already exists: a new module gets a directory of its own: choose another \
             one",
            dir.display()
        )]));
    }
    // node looks for no packages inside a directory named node_modules: componentize-js
    // would not start there.
    if lang == Lang::Js && dir.file_name().is_some_and(|last| last == "node_modules") {
        return Err(Error::Refused(vec![format!(
            "`{}`: a JavaScript module cannot be built in a directory named node_modules \
             (node looks for no packages there); choose another directory",
            dir.display()
        )]));
    }
    let package = package_name(name);
    let fill = |template: &str| {
        template
            .replace("{find_modhost}\n", FIND_MODHOST)
            .replace("{name}", name)
            .replace("{title}", &title(name))
            .replace("{type_name}", &type_name(name))
            .replace("{package}", &package)
            .replace("{crate_name}", &package.replace('-', "_"))
            .replace("{componentize_py}", COMPONENTIZE_PY_VERSION)
            .replace("{componentize_js}", COMPONENTIZE_JS_VERSION)
    };
    // The module's tables are named after it (`NAME_greetings`): a name whose tables would
    // be reserved makes no module.
    let module_xml = fill(MODULE_XML);
    let tables = module_xml
        .split("<table name=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next());
    if let Some(why) = tables.filter_map(modhost_manifest::reserved_table).next() {
        return Err(Error::Refused(vec![format!(
            "`{name}` is not a name for a module: its tables are named after it, and {why}; \
             choose another name"
        )]));
    }
    let files: Vec<(&str, String)> = match lang {
        Lang::Rust => [
            ("module.xml", module_xml),
            ("Cargo.toml", fill(RUST_CARGO)),
            ("Cargo.lock", fill(RUST_LOCK)),
            ("src/lib.rs", fill(RUST_LIB)),
            ("build.sh", fill(RUST_BUILD)),
            (".gitignore", RUST_GITIGNORE.to_owned()),
            ("sdk/Cargo.toml", RUST_SDK_CARGO.to_owned()),
            ("wit/module.wit", WIT.to_owned()),
        ]
        .into_iter()
        // The SDK's bindings read the contract two levels up, as in this repository.
        .chain(
            RUST_SDK.map(|(path, text)| (path, text.replace("\"../../wit/v0.1.0\"", "\"../wit\""))),
        )
        .collect(),
        Lang::Python => vec![
            ("module.xml", module_xml),
            ("app.py", fill(PYTHON_APP)),
            ("build.sh", fill(PYTHON_BUILD)),
            (".gitignore", PYTHON_GITIGNORE.to_owned()),
            ("sdk/modhost_sdk/__init__.py", PYTHON_SDK.to_owned()),
            ("wit/module.wit", WIT.to_owned()),
        ],
        Lang::Js => vec![
            ("module.xml", module_xml),
            ("app.js", fill(JS_APP)),
            ("package.json", fill(JS_PACKAGE)),
            ("package-lock.json", fill(JS_LOCK)),
            ("build.sh", fill(JS_BUILD)),
            (".gitignore", JS_GITIGNORE.to_owned()),
            ("sdk/modhost_sdk.js", JS_SDK.to_owned()),
            ("wit/module.wit", WIT.to_owned()),
        ],
    };
    // What the name makes of the templates must be a module modhost takes: a long name
    // makes table names past SQLite's identifiers, say.
    if let Some((_, xml)) = files.iter().find(|(file, _)| *file == "module.xml")
        && let Err(e) = modhost_manifest::Manifest::parse(xml, "module.xml")
    {
        return Err(Error::Refused(vec![format!(
            "`{name}` would make a module.xml modhost refuses ({e}); choose a shorter name"
        )]));
    }
    let mut written = Vec::with_capacity(files.len());
    for (relative, text) in files {
        let path = dir.join(relative);
        let io = |source| Error::Io {
            path: path.clone(),
            source,
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        std::fs::write(&path, text).map_err(io)?;
        if relative == "build.sh" {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).map_err(io)?;
        }
        written.push(path);
    }
    Ok(written)
}

/// `call_log` → `Call log`: the module's display name.
fn title(name: &str) -> String {
    let spaced = name.replace(['_', '-'], " ");
    let mut chars = spaced.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// Type names the templates' code already uses (Rust's prelude, the SDK's, Python's
/// constants and built-in exceptions, the `Lifecycle` and `Hooks` a Python module
/// exports): a module named after one gets `Module` added to its type's name (a class
/// `KeyError` would break every `except KeyError:` in the module).
const TAKEN_TYPES: &[&str] = &[
    "Module",
    "Result",
    "String",
    "Option",
    "Vec",
    "Box",
    "Some",
    "None",
    "Ok",
    "Err",
    "Self",
    "Send",
    "Sync",
    "Sized",
    "Copy",
    "Clone",
    "True",
    "False",
    "Lifecycle",
    "Hooks",
    "HostError",
    "NotImplemented",
    "Ellipsis",
    "BaseException",
    "BaseExceptionGroup",
    "GeneratorExit",
    "KeyboardInterrupt",
    "SystemExit",
    "Exception",
    "ExceptionGroup",
    "ArithmeticError",
    "AssertionError",
    "AttributeError",
    "BufferError",
    "FloatingPointError",
    "OverflowError",
    "ZeroDivisionError",
    "ImportError",
    "ModuleNotFoundError",
    "LookupError",
    "IndexError",
    "KeyError",
    "MemoryError",
    "NameError",
    "UnboundLocalError",
    "ChildProcessError",
    "ConnectionError",
    "BrokenPipeError",
    "ConnectionAbortedError",
    "ConnectionRefusedError",
    "ConnectionResetError",
    "FileExistsError",
    "FileNotFoundError",
    "InterruptedError",
    "IsADirectoryError",
    "NotADirectoryError",
    "PermissionError",
    "ProcessLookupError",
    "TimeoutError",
    "ReferenceError",
    "RuntimeError",
    "NotImplementedError",
    "RecursionError",
    "StopAsyncIteration",
    "StopIteration",
    "SyntaxError",
    "IndentationError",
    "TabError",
    "SystemError",
    "TypeError",
    "ValueError",
    "UnicodeError",
    "UnicodeDecodeError",
    "UnicodeEncodeError",
    "UnicodeTranslateError",
    "Warning",
    "BytesWarning",
    "DeprecationWarning",
    "EncodingWarning",
    "FutureWarning",
    "ImportWarning",
    "PendingDeprecationWarning",
    "ResourceWarning",
    "RuntimeWarning",
    "SyntaxWarning",
    "UnicodeWarning",
    "UserWarning",
];

/// Rust's keywords and the standard crates' names, which no crate may be called: a module
/// named after one gets `_module` added to its crate's name.
const TAKEN_CRATES: [&str; 57] = [
    "as",
    "break",
    "const",
    "continue",
    "crate",
    "else",
    "enum",
    "extern",
    "false",
    "fn",
    "for",
    "if",
    "impl",
    "in",
    "let",
    "loop",
    "match",
    "mod",
    "move",
    "mut",
    "pub",
    "ref",
    "return",
    "self",
    "static",
    "struct",
    "super",
    "trait",
    "true",
    "type",
    "unsafe",
    "use",
    "where",
    "while",
    "async",
    "await",
    "dyn",
    "abstract",
    "become",
    "box",
    "do",
    "final",
    "macro",
    "override",
    "priv",
    "typeof",
    "unsized",
    "virtual",
    "yield",
    "try",
    "gen",
    "core",
    "std",
    "alloc",
    "proc_macro",
    "test",
    "union",
];

/// The Rust package of module `name`: its name, unless no crate may be called so.
fn package_name(name: &str) -> String {
    if TAKEN_CRATES.contains(&name) {
        format!("{name}_module")
    } else {
        name.to_owned()
    }
}

/// `call_log` → `CallLog`: the module's type (`ModuleModule` for a module named `module`).
fn type_name(name: &str) -> String {
    let title_case = title_case(name);
    if TAKEN_TYPES.contains(&title_case.as_str()) {
        format!("{title_case}Module")
    } else {
        title_case
    }
}

/// `call_log` → `CallLog`.
fn title_case(name: &str) -> String {
    name.split(['_', '-'])
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|first| first.to_uppercase().chain(chars).collect::<String>())
                .unwrap_or_default()
        })
        .collect()
}

#[cfg(test)]
mod tests;
