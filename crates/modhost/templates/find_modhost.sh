modhost=${MODHOST:-modhost}
if ! command -v "$modhost" >/dev/null 2>&1; then
    echo "build.sh: \`$modhost\` is not on PATH: put the directory of the modhost binary on PATH, or set MODHOST=/path/to/modhost" >&2
    exit 1
fi
