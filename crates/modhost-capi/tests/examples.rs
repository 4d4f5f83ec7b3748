//! The C and PHP examples, built and run as their READMEs say: the C one with the system
//! C compiler against the shared and the static library, the PHP one through PHP's FFI
//! extension when `php` is installed (scripts/toolchain.sh installs it).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use modhost_test_support::{package, package_at};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The workspace's root.
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Where cargo put `libmodhost_capi.so` and `.a` for this test: beside the test binary,
/// in `target/<profile>/deps`, built with the rlib the test links.
fn library_dir() -> Result<PathBuf, Box<dyn std::error::Error>> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent().ok_or("the test binary has no directory")?;
    if !dir.join("libmodhost_capi.so").exists() {
        return Err(format!("no libmodhost_capi.so in {}", dir.display()).into());
    }
    Ok(dir.to_owned())
}

/// A package directory holding the example modules the examples install, one version
/// each (the test packages also hold a broken phonebook 3.0.0).
fn packages(dir: &Path) -> Result<PathBuf, Box<dyn std::error::Error>> {
    let packages = dir.join("packages");
    std::fs::create_dir(&packages)?;
    for source in [
        package("core"),
        package("voicemail"),
        package("callback"),
        package_at("phonebook", "2.0.0"),
    ] {
        let name = source.file_name().ok_or("a package without a name")?;
        std::fs::copy(&source, packages.join(name))?;
    }
    Ok(packages)
}

/// Runs `command`, failing with its output unless it succeeds; its stdout.
fn run(command: &mut Command) -> Result<String, Box<dyn std::error::Error>> {
    let Output {
        status,
        stdout,
        stderr,
    } = command.output()?;
    let stdout = String::from_utf8_lossy(&stdout).into_owned();
    if !status.success() {
        return Err(format!(
            "{command:?}: {status}\n{stdout}\n{}",
            String::from_utf8_lossy(&stderr)
        )
        .into());
    }
    Ok(stdout)
}

/// What the C example prints when the callback module called the C application's API on
/// the caller's channel, and logged it through the application's log callback.
fn assert_called_back(output: &str) {
    assert!(
        output.contains(r#"\"serving\":\"PJSIP/2025550101-incoming\""#)
            && output.contains(r#"\"state\":\"ringing\""#)
            && output.contains("channel PJSIP/101-00000000: ringing")
            && output.contains(
                "[NOTICE] callback: calling back channel=PJSIP/101-00000000 to=2025550101"
            ),
        "{output}"
    );
}

#[test]
fn the_c_example_gives_modules_its_api_through_the_shared_and_the_static_library() -> TestResult {
    let dir = tempfile::tempdir()?;
    let packages = packages(dir.path())?;
    let lib = library_dir()?;
    let source = workspace().join("examples/c/pbx.c");
    let include = workspace().join("crates/modhost-capi/include");
    let cc = |out: &Path| {
        let mut cc = Command::new("cc");
        cc.args(["-Wall", "-Wextra", "-Werror", "-std=c11", "-I"])
            .arg(&include)
            .arg("-o")
            .arg(out)
            .arg(&source);
        cc
    };

    let shared = dir.path().join("pbx-shared");
    run(cc(&shared)
        .arg("-L")
        .arg(&lib)
        .arg("-lmodhost_capi")
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .arg("-lpthread"))?;
    assert_called_back(&run(Command::new(&shared).arg(&packages))?);
    // A failure prints modhost's own message, naming what was missing.
    let missing = dir.path().join("no-such-packages");
    let failed = Command::new(&shared).arg(&missing).output()?;
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(
        !failed.status.success()
            && stderr.starts_with("pbx: install: ")
            && !stderr.contains(": ? (status")
            && stderr.contains(&*missing.to_string_lossy()),
        "{stderr}"
    );

    // The shared library exports modhost's functions and nothing else (its SQLite
    // included): an application's own SQLite is never interposed by it.
    let exported = run(Command::new("nm")
        .args(["-D", "--defined-only", "--format=posix"])
        .arg(lib.join("libmodhost_capi.so")))?;
    let functions: Vec<&str> = exported
        .lines()
        .filter_map(
            |line| match line.split_whitespace().collect::<Vec<_>>()[..] {
                [name, "T", ..] => Some(name),
                _ => None,
            },
        )
        .collect();
    assert!(
        functions.contains(&"modhost_open")
            && functions.iter().all(|name| name.starts_with("modhost_")),
        "{functions:?}"
    );

    // It names itself, so an application linked to it by its path needs only the
    // loader's search to find it.
    let dynamic = run(Command::new("readelf")
        .arg("-d")
        .arg(lib.join("libmodhost_capi.so")))?;
    assert!(
        dynamic.contains("(SONAME)") && dynamic.contains("[libmodhost_capi.so]"),
        "{dynamic}"
    );

    // The static library needs what Rust's standard library links on Linux.
    let fixed = dir.path().join("pbx-static");
    run(cc(&fixed)
        .arg(lib.join("libmodhost_capi.a"))
        .args(["-lpthread", "-ldl", "-lm"]))?;
    assert_called_back(&run(Command::new(&fixed).arg(&packages))?);
    Ok(())
}

/// Skips a test whose tool is missing, saying so; under CI (`MODHOST_CI` set, as `.ci/run`
/// sets it, after installing every tool) a missing tool fails the test instead.
fn skip(why: &str) -> TestResult {
    if std::env::var_os("MODHOST_CI").is_some() {
        return Err(format!("CI must run this test, but {why}").into());
    }
    println!("skipped: {why}");
    Ok(())
}

#[test]
fn the_php_example_routes_a_call_and_gives_its_api_through_ffi_where_php_is_installed() -> TestResult
{
    let modules = match Command::new("php").arg("-m").output() {
        Ok(output) => String::from_utf8_lossy(&output.stdout).into_owned(),
        Err(e) => {
            return skip(&format!(
                "`php` cannot run here ({e}); scripts/toolchain.sh installs php-cli"
            ));
        }
    };
    if !modules.lines().any(|line| line == "FFI") {
        return skip("this `php` has no FFI extension");
    }
    let dir = tempfile::tempdir()?;
    let packages = packages(dir.path())?;
    let output = run(Command::new("php")
        .arg(workspace().join("examples/php/pbx.php"))
        .arg(library_dir()?.join("libmodhost_capi.so"))
        .arg(&packages))?;
    assert!(
        output.contains(
            "call from Alice Example <2025550100> to 100: Dial(PJSIP/100)   \
             (via phonebook@100 -> voicemail@400 -> core@480)"
        ),
        "{output}"
    );
    // The telephony API given as PHP callbacks, answering through modhost_string_new.
    assert_called_back(&output);
    // A channel whose name is Latin-1, not UTF-8: the callback answers the module with
    // its bytes replaced, and nothing is thrown out of it (which would stop PHP).
    use std::os::unix::ffi::OsStrExt;
    let output = run(Command::new("php")
        .arg(workspace().join("examples/php/pbx.php"))
        .arg(library_dir()?.join("libmodhost_capi.so"))
        .arg(&packages)
        .arg(std::ffi::OsStr::from_bytes(b"PJSIP/caf\xe9-incoming")))?;
    assert!(
        output.contains("\\\"serving\\\":\\\"PJSIP/caf\u{fffd}-incoming\\\"")
            && output.contains("channel PJSIP/101-00000000: ringing"),
        "{output}"
    );
    Ok(())
}

/// The one block of code in `language` in the README's "Embedding modhost" section.
fn readme_sketch(language: &str) -> Result<String, Box<dyn std::error::Error>> {
    let readme = std::fs::read_to_string(workspace().join("README.md"))?;
    let section = readme
        .split("\n## ")
        .find(|s| s.starts_with("Embedding modhost"))
        .ok_or("the README has no \"Embedding modhost\" section")?;
    let fence = format!("\n```{language}\n");
    let mut blocks = section.split(fence.as_str()).skip(1);
    let block = blocks
        .next()
        .and_then(|rest| rest.split("\n```").next())
        .ok_or_else(|| format!("no {language} block in \"Embedding modhost\""))?;
    if blocks.next().is_some() {
        return Err(format!("more than one {language} block in \"Embedding modhost\"").into());
    }
    Ok(block.to_owned())
}

#[test]
fn the_readmes_c_sketch_compiles_and_links_against_the_header_and_library() -> TestResult {
    let dir = tempfile::tempdir()?;
    let sketch = readme_sketch("c")?;
    // The sketch's surroundings: the application's telephony callback and its state.
    let program = format!(
        "#include <stdbool.h>\n#include \"modhost.h\"\n\
         static int telephony(void *user_data, const char *function, const char *args_json,\n\
                              const char *context, char **result_json) {{\n\
             (void)user_data; (void)function; (void)args_json; (void)context;\n\
             *result_json = NULL;\n\
             return 1;\n\
         }}\n\
         int main(void) {{\n\
             int sw = 0;\n\
         {sketch}\n\
             modhost_close(host);\n\
             return 0;\n\
         }}\n"
    );
    let source = dir.path().join("sketch.c");
    std::fs::write(&source, program)?;
    let lib = library_dir()?;
    run(Command::new("cc")
        .args(["-Wall", "-Wextra", "-Werror", "-std=c11", "-I"])
        .arg(workspace().join("crates/modhost-capi/include"))
        .arg("-o")
        .arg(dir.path().join("sketch"))
        .arg(&source)
        .arg("-L")
        .arg(&lib)
        .arg("-lmodhost_capi")
        .arg("-lpthread"))?;
    Ok(())
}

#[test]
fn the_readmes_php_sketch_opens_a_root_and_dispatches_as_written() -> TestResult {
    match Command::new("php").arg("-m").output() {
        Ok(output)
            if String::from_utf8_lossy(&output.stdout)
                .lines()
                .any(|l| l == "FFI") => {}
        Ok(_) => return skip("this `php` has no FFI extension"),
        Err(e) => return skip(&format!("`php` cannot run here ({e})")),
    }
    let dir = tempfile::tempdir()?;
    let root = dir.path().join("root");
    let sketch = readme_sketch("php")?;
    // Where the sketch names a deployment's paths, this test's; the rest as written.
    let header = workspace().join("crates/modhost-capi/include/modhost.h");
    let library = library_dir()?.join("libmodhost_capi.so");
    let mut script = sketch.clone();
    for (written, here) in [
        ("'crates/modhost-capi/include/modhost.h'", header.as_path()),
        ("'libmodhost_capi.so'", library.as_path()),
        ("'/var/lib/modhost'", root.as_path()),
    ] {
        if !sketch.contains(written) {
            return Err(format!("the PHP sketch no longer names {written}").into());
        }
        script = script.replace(written, &format!("'{}'", here.display()));
    }
    let mut script = format!("<?php\n{script}");
    script.push_str("\necho json_encode($dispatch);\n");
    let file = dir.path().join("sketch.php");
    std::fs::write(&file, script)?;
    let output = run(Command::new("php").arg(&file))?;
    // The root was made, and the dispatch answered: no module handles the hook yet.
    let dispatch: serde_json::Value = serde_json::from_str(output.trim())?;
    assert_eq!(dispatch["calls"], serde_json::json!([]), "{output}");
    assert!(root.join("modhost.db").is_file());
    Ok(())
}
