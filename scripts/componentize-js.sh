# Sourced by scripts/test: puts the pinned componentize-js (the version `modhost new
# --lang js` writes into package.json and build.sh) on PATH, from an npm install under
# target/, so the JavaScript module tests build real components. Installed from npm on
# first use, when node and npm are there (scripts/toolchain.sh installs them).
# Paths from this script's own place: it may be sourced from any directory.
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
version=$(sed -n 's/^pub const COMPONENTIZE_JS_VERSION: &str = "\(.*\)";$/\1/p' \
    "$repo/crates/modhost/src/scaffold.rs")
if [ -z "$version" ]; then
    echo "toolchain: no COMPONENTIZE_JS_VERSION in $repo/crates/modhost/src/scaffold.rs" >&2
    return 1
fi
prefix=$repo/target/componentize-js-$version
if [ ! -x "$prefix/node_modules/.bin/componentize-js" ]; then
    echo "toolchain: installing componentize-js $version" >&2
    mkdir -p "$prefix"
    npm install --silent --no-audit --no-fund --prefix "$prefix" \
        "@bytecodealliance/componentize-js@$version"
fi
export PATH="$prefix/node_modules/.bin:$PATH"
# The JavaScript module tests fail, rather than skip, when the tool is missing.
export MODHOST_REQUIRE_JS=1
unset repo version prefix
