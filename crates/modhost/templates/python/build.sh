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
    if [ ! -x .venv/bin/componentize-py ]; then
        python3 -m venv .venv
        .venv/bin/pip install --quiet "componentize-py==$version"
    fi
    componentize_py=.venv/bin/componentize-py
fi
"$componentize_py" -d wit -w module componentize app -p . -p sdk -o module.wasm
"$modhost" pack .
