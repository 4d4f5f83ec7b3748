#!/bin/sh
# Builds the `{name}` component and packs it: ./build.sh  ->  {name}-VERSION.tgz,
# VERSION being module.xml's <version>.
# componentize-py is pinned: a local virtualenv gets that version unless one is on PATH.
set -eu
cd "$(dirname "$0")"
{find_modhost}
version={componentize_py}
componentize_py=componentize-py
if [ "$(componentize-py --version 2>/dev/null)" != "componentize-py $version" ]; then
    componentize_py=.venv/bin/componentize-py
    # A virtualenv moved with its directory still points at where it was: made again.
    if [ "$("$componentize_py" --version 2>/dev/null)" != "componentize-py $version" ]; then
        if ! command -v python3 >/dev/null 2>&1; then
            echo "build.sh: python3 is not on PATH: install Python 3 (with its venv module), or put componentize-py $version on PATH" >&2
            exit 1
        fi
        rm -rf .venv
        python3 -m venv .venv
        if ! .venv/bin/pip install --quiet "componentize-py==$version"; then
            echo "build.sh: pip could not install componentize-py $version (offline?): put componentize-py $version on PATH instead" >&2
            exit 1
        fi
    fi
fi
# A syntax error, said by Python with app.py's line (componentize-py would bury it in a
# backtrace of its own). The Python here may be older than the CPython componentize-py
# bundles, and refuse newer syntax that one takes: what it says is shown only if the build
# then fails.
python=python3
[ -x .venv/bin/python ] && python=.venv/bin/python
syntax=
if command -v "$python" >/dev/null 2>&1; then
    syntax=$("$python" -c 'import sys, traceback
try:
    compile(open("app.py", encoding="utf-8").read(), "app.py", "exec")
except SyntaxError as error:
    sys.stderr.write("".join(traceback.format_exception_only(type(error), error)))
    sys.exit(1)' 2>&1) || true
fi
# componentize-py's output differs from build to build, even from the same sources, and
# modhost compiles every different component again (a minute or more): when no source
# changed since module.wasm was built, it is kept, and a change to module.xml alone
# (a new <version>) installs without compiling.
# The inputs: the tool that runs (its own version, whichever was found), this script
# (its command line), and every Python and WIT file, linked ones followed as the tool
# follows them, but for the bindings a type checker reads (`bindings/`, which the
# README's mypy recipe writes). Without sha256sum (macOS has shasum), every build builds.
inputs=
if command -v sha256sum >/dev/null 2>&1; then
    inputs="$("$componentize_py" --version) $(find -L . -path ./.venv -prune \
        -o -path ./bindings -prune \
        -o -name __pycache__ -prune \
        -o -type f \( -name '*.py' -o -name '*.wit' -o -name build.sh \) -exec sha256sum {} + |
        LC_ALL=C sort -k2 | sha256sum)"
fi
if [ -n "$inputs" ] && [ -f module.wasm ] && [ "$(cat .module.wasm.inputs 2>/dev/null)" = "$inputs" ]; then
    echo "build.sh: module.wasm is up to date (no source changed since it was built)" >&2
    # Newer than the sources it was built from, as `modhost pack` checks: a source touched
    # without a change (a checkout, an editor's save) is not told as stale.
    touch module.wasm
else
    rm -f .module.wasm.inputs
    echo "build.sh: building module.wasm with componentize-py $version (a minute or more)" >&2
    # Pure-Python packages from PyPI go in deps/ (`python3 -m pip install --target deps NAME`).
    deps=
    [ ! -d deps ] || deps=deps
    # Its own Rust backtrace (RUST_BACKTRACE set for other work) would bury the cause.
    if ! output=$(RUST_BACKTRACE=0 "$componentize_py" -d wit -w module componentize app \
        -p . -p sdk ${deps:+-p deps} -o module.wasm 2>&1); then
        case $output in
        *SyntaxError*)
            if [ -n "$syntax" ]; then
                printf '%s\n' "$syntax" >&2
                exit 1
            fi
            ;;
        *"called trapping stub: modhost:module/"*)
            # Its wasm backtrace names no line of app.py: what it called is what helps.
            stub=$(printf '%s\n' "$output" | sed -n 's/.*called trapping stub: \(modhost:module[^ ]*\).*/\1/p' | head -n 1)
            echo "build.sh: app.py calls the host ($stub) from its top level, which runs while componentize-py builds the component, when there is no host to answer: call it from a method (install(), a handler)" >&2
            exit 1
            ;;
        esac
        case $output in
        *"AssertionError: Traceback"*)
            # app.py failed as componentize-py ran its top level: its traceback, without
            # the one componentize-py wraps it in.
            output=${output#*AssertionError: }
            ;;
        esac
        # componentize-py names the files it was given by where it mounted them (`-p .` at
        # /0, `-p sdk` at /1, `-p deps` at /2): named here as the author knows them.
        printf '%s\n' "$output" | sed -e 's#File "/0/#File "#g' -e 's#File "/1/#File "sdk/#g' \
            -e 's#File "/2/#File "deps/#g' >&2
        case $output in
        *"ModuleNotFoundError: No module named '"*)
            missing=$(printf '%s\n' "$output" | sed -n "s/.*No module named '\([^'.]*\).*/\1/p" | tail -n 1)
            echo "build.sh: \`$missing\` is in neither app.py's directory, sdk/ nor deps/: a pure-Python package from PyPI goes in deps/ (\`python3 -m pip install --target deps $missing\`, by its PyPI name); one with compiled parts cannot run in a module" >&2
            ;;
        *"has no attribute 'Lifecycle'"* | *"has no attribute 'Hooks'"*)
            echo "build.sh: componentize-py looks for \`Lifecycle\` and \`Hooks\` in app.py: end it with \`Lifecycle, Hooks = YourModule.exports()\`, YourModule being your Module subclass" >&2
            ;;
        esac
        exit 1
    fi
    [ -z "$output" ] || printf '%s\n' "$output" >&2
    [ -z "$inputs" ] || printf '%s\n' "$inputs" > .module.wasm.inputs
fi
"$modhost" pack .
