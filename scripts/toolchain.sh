# Sourced by the other scripts: installs the toolchain that rust-toolchain.toml pins, with
# the wasm32-wasip2 target, so a fresh machine needs nothing but rustup. A script's prologue:
# it moves to the repository's root and sets `-euo pipefail` in the shell that sources it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if command -v rustup >/dev/null 2>&1; then
    rustup toolchain install >/dev/null
    rustup target add wasm32-wasip2 >/dev/null
fi
# The C and PHP embedding examples (crates/modhost-capi's tests) need a C compiler and
# PHP's CLI, whose FFI extension Debian enables for the CLI. Installed only when missing,
# so a machine that has them runs nothing here; a failed install leaves the C test to
# fail and the PHP one to say it was skipped, rather than stopping the suite.
missing=()
command -v cc >/dev/null 2>&1 || missing+=(gcc libc6-dev)
command -v php >/dev/null 2>&1 || missing+=(php-cli)
# JavaScript modules are built with componentize-js, which runs on node and comes from npm.
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
# The real minisign tool checks that modhost reads the secret keys it makes.
command -v minisign >/dev/null 2>&1 || missing+=(minisign)
if ((${#missing[@]})) && command -v apt-get >/dev/null 2>&1; then
    as_root=()
    [ "$(id -u)" -eq 0 ] || as_root=(sudo -n)
    echo "toolchain: installing ${missing[*]}" >&2
    { "${as_root[@]}" apt-get update -qq &&
        "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            --no-install-recommends "${missing[@]}"; } >/dev/null 2>&1 ||
        echo "toolchain: could not install ${missing[*]}" >&2
fi
unset missing as_root
