# Sourced by scripts/test: puts the pinned componentize-py (the version `modhost new
# --lang python` writes into build.sh) on PATH, from a virtualenv under target/, so the
# Python module tests build real components. Installed from PyPI on first use.
# Paths from this script's own place: it may be sourced from any directory.
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
version=$(sed -n 's/^pub const COMPONENTIZE_PY_VERSION: &str = "\(.*\)";$/\1/p' \
    "$repo/crates/modhost/src/scaffold.rs")
if [ -z "$version" ]; then
    echo "toolchain: no COMPONENTIZE_PY_VERSION in $repo/crates/modhost/src/scaffold.rs" >&2
    return 1
fi
venv=$repo/target/componentize-py-$version
if [ ! -x "$venv/bin/componentize-py" ]; then
    echo "toolchain: installing componentize-py $version" >&2
    python3 -m venv "$venv" >/dev/null &&
        "$venv/bin/pip" install --quiet --disable-pip-version-check "componentize-py==$version" ||
        { echo "toolchain: could not install componentize-py $version" >&2; return 1; }
fi
# mypy, pinned, beside it: the tests check the Python SDK and a new module's app.py are
# typed, against the bindings componentize-py generates.
mypy_version=1.15.0
if [ "$("$venv/bin/python" -m mypy --version 2>/dev/null | cut -d' ' -f2)" != "$mypy_version" ]; then
    echo "toolchain: installing mypy $mypy_version" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check "mypy==$mypy_version"
fi
export PATH="$venv/bin:$PATH"
# The Python module tests fail, rather than skip, when the tool is missing.
export MODHOST_REQUIRE_PYTHON=1
unset repo version venv mypy_version
