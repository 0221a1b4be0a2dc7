#!/usr/bin/env bash
# bench/soak.sh: bantin under a mixed load for SOAK seconds; its memory must stay flat and it must
# answer no 5xx.
#
# What runs at once, against one bantin (ARTICLES archive articles, a BUDGET-byte cache):
#   reads    wrk -c READERS over the language and category feeds, pages 1-3, three formats,
#            gzip, in random order (bench/mixed.lua)
#   writes   WRITES_PER_S article PUTs per second (new articles and corrections), each one
#            invalidating the feeds it touches (bench/soak_writer.py)
#   sweeps   bench/sweep.py pages, again and again: every page of every feed, each a miss
#   memory   bantin's footprint (resident anonymous memory + bytes in memfds) every 10 s
# Goals (issue 8): zero 5xx from any of them; after a warm-up (WARMUP seconds), the footprint
# stays within +-10% of its median.
#
#   bench/soak.sh                  # 10 minutes
#   SOAK=120 WARMUP=30 bench/soak.sh
#
# Settings: SOAK=600 WARMUP=120 ARTICLES=20000 BUDGET=33554432 READERS=32 WRITES_PER_S=5

set -Eeuo pipefail
PROG=soak
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
SERVE_RUST_LOG=0

SOAK=${SOAK:-600}
WARMUP=${WARMUP:-120}
ARTICLES=${ARTICLES:-20000}
BUDGET=${BUDGET:-33554432}
READERS=${READERS:-32}
WRITES_PER_S=${WRITES_PER_S:-5}
TOKEN=soak-token-0123456789abcdef

need -p "wrk curl python3" wrk curl python3 awk
BG=()
before_cleanup() {
    local p
    for p in "${BG[@]}"; do stop_pid "$p"; done
    return 0
}
bench_init
RAW=$OUT_DIR/raw
mkdir -p "$RAW"
find_bin

GEN_ARGS=(--mode archive --count "$ARTICLES" --body-bytes 1150)
CORPUS=$CACHE_DIR/archive-$(corpus_key "${GEN_ARGS[@]}")
cache_corpus "$CORPUS" "$ARTICLES articles into $CORPUS" '{print > (d "/archive.ndjson")}'
make_site "$WORK/site" "" "" 50
sed -i -e "s/^max_bytes[[:space:]]*=.*/max_bytes = $BUDGET/" "$WORK/site/site.toml"
DB=sqlite://$WORK/soak.db
(cd "$REPO" && BANTIN_DATABASE_URL=$DB timeout 600 "$BIN" --config "$WORK/site/site.toml" \
    import "$CORPUS/archive.ndjson") >"$WORK/import.log" 2>&1 || die "import failed"
PORT=$(free_port)
start_bantin bantin "$WORK/site/site.toml" "$DB" "$PORT" BANTIN_API_TOKEN="$TOKEN"
PID=$STARTED_PID
BASE=http://127.0.0.1:$PORT

# The read mix: every language and category feed, pages 1-3, in all three formats.
python3 - "$BASE" >"$WORK/paths.lua" <<'EOF'
import re, sys, urllib.parse, urllib.request
body = urllib.request.urlopen(sys.argv[1] + "/feeds.opml").read().decode()
paths = []
for url in re.findall(r'xmlUrl="([^"]+)"', body):
    p = urllib.parse.urlparse(url).path
    if "/tag/" in p or "/author/" in p:
        continue
    for fmt in ("rss.xml", "atom.xml", "feed.json"):
        for page in (1, 2, 3):
            paths.append(p.rsplit("/", 1)[0] + "/" + fmt + ("" if page == 1 else f"?page={page}"))
print("paths = {" + ",".join('"%s"' % p for p in paths) + "}")
EOF
cat "$WORK/paths.lua" "$BENCH_DIR/mixed.lua" >"$WORK/mixed.lua"

mem() { python3 "$BENCH_DIR/sweep.py" "$PID" mem; }
say "soaking for $SOAK s..."
START=$(date +%s)
(while (($(date +%s) - START < SOAK)); do
    read -r rss anon _ mb _ fds < <(mem) || break
    echo "$(($(date +%s) - START)) $rss $anon $mb $fds"
    sleep 10
done) >"$RAW/memory.txt" &
BG+=($!)
python3 "$BENCH_DIR/soak_writer.py" "$BASE" "$TOKEN" "$WRITES_PER_S" "$SOAK" >"$RAW/writes.txt" 2>&1 &
BG+=($!)
WRITER=$!
(while (($(date +%s) - START < SOAK - 30)); do
    python3 "$BENCH_DIR/sweep.py" "$BASE" pages 2
done) >"$RAW/sweeps.txt" 2>&1 &
BG+=($!)
SWEEPER=$!
wrk -t2 -c"$READERS" -d"${SOAK}s" --latency -s "$WORK/mixed.lua" "$BASE/vi/rss.xml" >"$RAW/reads.wrk" 2>&1 || true
wait "$WRITER" || true
wait "$SWEEPER" || true
sleep 11

read -r rps p50 p99 reqs non serr < <(parse_wrk "$RAW/reads.wrk" requests)
writes=$(tail -n 1 "$RAW/writes.txt")
sweep_5xx=$(awk '{n = split($2, a, ","); for (i = 1; i <= n; i++) { split(a[i], kv, "="); if (kv[1] >= 500 || kv[1] == 0) s += kv[2] } ; t += $1} END {printf "%d %d", t, s}' "$RAW/sweeps.txt")
read -r sweep_reqs sweep_bad <<<"$sweep_5xx"
# Footprint = anon kB * 1024 + memfd bytes, after the warm-up.
flat=$(awk -v w="$WARMUP" '$1 >= w {v[n++] = $3 * 1024 + $4} END {
    if (n == 0) { print "- - - -"; exit }
    asort(v); med = v[int((n + 1) / 2)]; printf "%.1f %.1f %.1f %.1f", v[1] / 1048576, med / 1048576, v[n] / 1048576, 100 * (v[n] - v[1]) / (2 * med) }' "$RAW/memory.txt")
read -r fmin fmed fmax spread <<<"$flat"
SUMMARY=$OUT_DIR/summary.md
{
    echo "## bench/soak.sh — $(date -u +%Y-%m-%d) — bantin $REV"
    echo
    echo "Machine: $(machine_line). $SOAK s; $ARTICLES articles; cache budget $((BUDGET / 1048576)) MiB."
    echo
    echo "| load | requests | 5xx or failed | notes |"
    echo "| --- | ---: | ---: | --- |"
    echo "| reads (wrk -c$READERS, mixed feeds/pages/formats) | $(fmt_int "$reqs") | $non non-2xx/3xx, $serr socket errors | $(fmt_int "$rps") req/s, p99 $p99 ms |"
    echo "| writes (PUT, $WRITES_PER_S/s) | ${writes%% *} | $(awk '{print $2}' <<<"$writes") | statuses: $(awk '{print $3}' <<<"$writes") |"
    echo "| page sweeps (every page of every feed, repeated) | $(fmt_int "$sweep_reqs") | $sweep_bad | $(wc -l <"$RAW/sweeps.txt") sweeps |"
    echo
    echo "Footprint (resident anonymous + memfd bytes) after ${WARMUP} s: min $fmin MiB, median $fmed MiB, max $fmax MiB; half-range $spread% of the median (goal: <= 10%)."
    echo
    echo "Series (s, VmRSS kB, RssAnon kB, memfd bytes, fds): $RAW/memory.txt"
} >"$SUMMARY"
cat "$SUMMARY"
