# Sourced by the other scripts: installs the toolchain that rust-toolchain.toml pins, with
# the wasm32-wasip2 target, so a fresh machine needs nothing but rustup.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if command -v rustup >/dev/null 2>&1; then
    rustup toolchain install >/dev/null
    rustup target add wasm32-wasip2 >/dev/null
fi
