#!/bin/sh
# Builds the `{name}` component and packs it: ./build.sh  ->  {name}-VERSION.tgz,
# VERSION being module.xml's <version>.
set -eu
cd "$(dirname "$0")"
{find_modhost}
if ! command -v cargo >/dev/null 2>&1; then
    echo "build.sh: cargo is not on PATH: install Rust with rustup (https://rustup.rs)" >&2
    exit 1
fi
# rustup adds the target once; a Rust without rustup must have it already.
if command -v rustup >/dev/null 2>&1 &&
    ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
    rustup target add wasm32-wasip2
fi
# Where cargo builds: CARGO_TARGET_DIR, build.target-dir in a .cargo/config.toml, or target/.
target_dir=$(cargo metadata --format-version 1 --no-deps |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
# A target directory shared with other modules gets a directory of this module's inside
# it: cargo names the build of a path crate by its path relative to the module (`sdk`,
# `.`), so modules sharing one would take each other's SDK and code for up to date.
if [ "$target_dir" != "$(pwd)/target" ] && [ "$target_dir" != "$(pwd -P)/target" ]; then
    target_dir="$target_dir/modhost-$(pwd -P | cksum | cut -d ' ' -f 1)"
fi
cargo build --release --target wasm32-wasip2 --target-dir "$target_dir"
cp "$target_dir/wasm32-wasip2/release/{crate_name}.wasm" module.wasm
"$modhost" pack .
