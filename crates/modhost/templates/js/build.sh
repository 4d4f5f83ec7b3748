#!/bin/sh
# Builds the `{name}` component and packs it: ./build.sh  ->  {name}-VERSION.tgz,
# VERSION being module.xml's <version>.
# componentize-js is pinned (package.json): npm installs that version into node_modules
# unless it is on PATH. WASI's HTTP is left out: modhost gives modules no network.
set -eu
cd "$(dirname "$0")"
{find_modhost}
version={componentize_js}
componentize_js=componentize-js
if [ "$(componentize-js --version 2>/dev/null)" != "$version" ]; then
    if [ ! -x node_modules/.bin/componentize-js ]; then
        if ! command -v npm >/dev/null 2>&1; then
            echo "build.sh: npm is not on PATH: install Node.js (with npm), or put componentize-js $version on PATH" >&2
            exit 1
        fi
        npm install --silent --no-audit --no-fund
    fi
    componentize_js=node_modules/.bin/componentize-js
fi
# A syntax error, said by node with app.js's line (componentize-js would not say where).
node --check app.js
# componentize-js's output differs from build to build, even from the same sources, and
# modhost compiles every different component again (a minute or more): when no source
# changed since module.wasm was built, it is kept, and a change to module.xml alone
# (a new <version>) installs without compiling.
# The inputs: the tool that runs (its own version, whichever was found), this script
# (its command line), the package files that pin the tool, and every JavaScript and WIT
# file, linked ones followed as the tool follows them. Without sha256sum (macOS has
# shasum), every build builds.
inputs=
if command -v sha256sum >/dev/null 2>&1; then
    inputs="componentize-js $("$componentize_js" --version) $(find -L . -path ./node_modules -prune \
        -o -type f \( -name '*.js' -o -name '*.mjs' -o -name '*.wit' -o -name build.sh \
        -o -name package.json -o -name package-lock.json \) -exec sha256sum {} + |
        LC_ALL=C sort -k2 | sha256sum)"
fi
if [ -n "$inputs" ] && [ -f module.wasm ] && [ "$(cat .module.wasm.inputs 2>/dev/null)" = "$inputs" ]; then
    echo "build.sh: module.wasm is up to date (no source changed since it was built)" >&2
    # Newer than the sources it was built from, as `modhost pack` checks: a source touched
    # without a change (a checkout, an editor's save) is not told as stale.
    touch module.wasm
else
    rm -f .module.wasm.inputs
    if ! output=$("$componentize_js" --wit wit --world-name module --disable http fetch-event \
        --out module.wasm app.js 2>&1); then
        case $output in
        *"unknown imported function: 'modhost:module/"*)
            # Its wasm backtrace names no line of app.js: what it called is what helps.
            stub=$(printf '%s\n' "$output" | sed -n "s/.*unknown imported function: '\(modhost:module[^']*\)' '\([^']*\)'.*/\1#\2/p" | head -n 1)
            echo "build.sh: app.js calls the host ($stub) from its top level, which runs while componentize-js builds the component, when there is no host to answer: call it from a method (install(), a handler)" >&2
            exit 1
            ;;
        *"does not export a \""*"\" interface as expected by the world"*)
            # componentize-js names the file it was given as source.js, and would have an
            # empty object exported: a module with no handlers.
            echo "build.sh: app.js must export \`lifecycle\` and \`hooks\`, as it does when it ends with \`export const { lifecycle, hooks } = defineModule({ ... });\`" >&2
            exit 1
            ;;
        *'Error loading module "'*)
            imported=$(printf '%s\n' "$output" | sed -n 's/.*Error loading module "\([^"]*\)".*/\1/p' | head -n 1)
            case $imported in
            ./* | ../* | /*) ;;
            *)
                echo "build.sh: app.js imports \`$imported\`, a package: componentize-js follows only relative imports (./file.js); bundle the package into one file first (esbuild --bundle --format=esm), or copy its code beside app.js" >&2
                exit 1
                ;;
            esac
            ;;
        esac
        printf '%s\n' "$output" >&2
        exit 1
    fi
    [ -z "$output" ] || printf '%s\n' "$output" >&2
    [ -z "$inputs" ] || printf '%s\n' "$inputs" > .module.wasm.inputs
fi
"$modhost" pack .
