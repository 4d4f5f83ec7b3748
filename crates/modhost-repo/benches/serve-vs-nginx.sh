#!/bin/bash
# `repo serve` and nginx side by side under h2load, alternating load by load, then the
# medians: small documents over HTTP/1.1 and HTTP/2 (20 000 GETs on 100 connections) and
# the largest package (100 GETs on 100 connections), all identity-encoded over TLS.
#
#   crates/modhost-repo/benches/serve-vs-nginx.sh OUT CERT KEY [ROUNDS] [BEFORE]
#
# OUT is a `repo build --out` directory; CERT and KEY a PEM certificate chain and key.
# `repo serve` is the serve bench's binary in its server mode (build it first:
# `cargo bench -p modhost-repo --bench serve --no-run`), or $SERVE_BIN. BEFORE, when
# given, is another such binary (an older build) run alongside as a third server.
# nginx runs with as many workers as the machine has cores ($NGINX_WORKERS), as many as
# `repo serve`'s runtime has threads; h2load runs on one thread. Needs nginx, h2load
# (nghttp2-client) and python3. See BENCHMARKS.md.
set -euo pipefail

OUT=$(realpath "$1")
CERT=$(realpath "$2")
KEY=$(realpath "$3")
ROUNDS=${4:-7}
BEFORE=${5:-}
HERE=$(dirname "$(realpath "$0")")
WORKSPACE=$(realpath "$HERE/../../..")
SERVE_BIN=${SERVE_BIN:-$(ls -t "$WORKSPACE"/target/release/deps/serve-* | grep -v '\.d$' | head -1)}
NGINX_WORKERS=${NGINX_WORKERS:-$(nproc)}
SMALL=${SMALL:-/index.json}
BIG=${BIG:-/packages/$(ls -S "$OUT/public/packages" | head -1)}

WORK=$(mktemp -d)
cleanup() {
    for pid in "$WORK"/*.pid; do [ "$pid" != "$WORK/nginx.pid" ] && kill "$(cat "$pid")" 2>/dev/null; done
    [ -f "$WORK/nginx.pid" ] && nginx -p "$WORK" -c "$WORK/nginx.conf" -s stop 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

mkdir -p "$WORK/fixture" "$WORK/tmp"
ln -s "$OUT" "$WORK/fixture/repo"
cp "$CERT" "$WORK/fixture/server.pem"
cp "$KEY" "$WORK/fixture/server.key"
NGINX_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat > "$WORK/nginx.conf" <<EOF
worker_processes $NGINX_WORKERS;
pid $WORK/nginx.pid;
error_log $WORK/error.log warn;
events { worker_connections 4096; }
http {
    types { application/json json; application/gzip tgz; application/zip zip; }
    access_log off;
    sendfile on;
    keepalive_timeout 65;
    client_body_temp_path $WORK/tmp; proxy_temp_path $WORK/tmp; fastcgi_temp_path $WORK/tmp;
    uwsgi_temp_path $WORK/tmp; scgi_temp_path $WORK/tmp;
    server {
        listen 127.0.0.1:$NGINX_PORT ssl http2;
        ssl_certificate $CERT;
        ssl_certificate_key $KEY;
        root $OUT/public;
    }
}
EOF
nginx -p "$WORK" -c "$WORK/nginx.conf" -e "$WORK/error.log"

# Starts the serve bench binary $1 in its server mode as $2; prints its port.
start() {
    MODHOST_BENCH_SERVE="$WORK/fixture" "$1" > "$WORK/$2.out" &
    echo $! > "$WORK/$2.pid"
    for _ in $(seq 100); do [ -s "$WORK/$2.out" ] && break; sleep 0.1; done
    cut -d: -f2 "$WORK/$2.out"
}
SERVERS=("repo-serve:$(start "$SERVE_BIN" repo-serve)" "nginx:$NGINX_PORT")
[ -n "$BEFORE" ] && SERVERS+=("repo-serve-before:$(start "$(realpath "$BEFORE")" repo-serve-before)")
echo "repo serve: $SERVE_BIN; nginx: $NGINX_WORKERS workers; h2load: $(h2load --version | head -1)"

for round in $(seq "$ROUNDS"); do
    for load in "http/1.1 $SMALL 20000" "h2 $SMALL 20000" "http/1.1 $BIG 100" "h2 $BIG 100"; do
        set -- $load
        for server in "${SERVERS[@]}"; do
            report=$(h2load --npn-list="$1" -t1 -n "$3" -c 100 -H 'accept-encoding: identity' \
                "https://127.0.0.1:${server#*:}$2" 2>&1)
            grep -q "$3 succeeded" <<< "$report" || { echo "failed: $server $load" >&2; echo "$report" >&2; }
            echo "round $round ${server%%:*} $1 $2 $(grep -o 'finished in [^,]*, [0-9.]* req/s, [0-9.]*[KMG]*B/s' <<< "$report")"
        done
    done
done | tee "$WORK/runs.txt"

for server in "${SERVERS[@]}"; do
    name=${server%%:*}
    if [ "$name" = nginx ]; then
        master=$(cat "$WORK/nginx.pid")
        pids="$master $(cat /proc/"$master"/task/"$master"/children)"
    else
        pids=$(cat "$WORK/$name.pid")
    fi
    kib=0
    for pid in $pids; do kib=$((kib + $(awk '/VmHWM/ {print $2}' /proc/"$pid"/status))); done
    echo "peak memory (VmHWM, summed over processes) of $name: $((kib / 1024)) MiB"
done

python3 - "$WORK/runs.txt" <<'EOF'
import re, statistics, sys
from collections import defaultdict
runs = defaultdict(list)
for line in open(sys.argv[1]):
    m = re.match(r'round (\d+) (\S+) (\S+) (\S+) finished in [^,]*, ([0-9.]+) req/s, ([0-9.]+)([KMG]?)B/s', line)
    if m:
        _, server, proto, path, rps, rate, unit = m.groups()
        mbs = float(rate) * {'K': 1e-3, 'M': 1, 'G': 1e3, '': 1e-6}[unit]
        runs[(proto, path, server)].append((float(rps), mbs))
print('\nmedians (per-round ratios to nginx: median, range)')
for proto, path in dict.fromkeys((p, q) for p, q, _ in runs):
    big = not path.endswith('.json')
    pick = (lambda r: r[1]) if big else (lambda r: r[0])
    unit = 'MB/s' if big else 'req/s'
    nginx = runs[(proto, path, 'nginx')]
    cells = []
    for (p, q, server), rs in runs.items():
        if (p, q) != (proto, path):
            continue
        cell = f'{server} {statistics.median(map(pick, rs)):.0f} {unit}'
        if server != 'nginx':
            ratios = [pick(a) / pick(b) for a, b in zip(rs, nginx)]
            cell += f' ({statistics.median(ratios):.2f}, {min(ratios):.2f}-{max(ratios):.2f})'
        cells.append(cell)
    print(f'{proto:8} {path:36} ' + '; '.join(cells))
EOF
