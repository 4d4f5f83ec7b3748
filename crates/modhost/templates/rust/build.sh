#!/bin/sh
# Builds the `{name}` component and packs it: ./build.sh  ->  {name}-VERSION.tgz,
# VERSION being module.xml's <version>.
set -eu
cd "$(dirname "$0")"
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
    rustup target add wasm32-wasip2
fi
cargo build --release --target wasm32-wasip2
target_dir="${CARGO_TARGET_DIR:-target}"
cp "$target_dir/wasm32-wasip2/release/{crate_name}.wasm" module.wasm
"${MODHOST:-modhost}" pack .
