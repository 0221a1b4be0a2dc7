#!/usr/bin/env bash
# bench/readership.sh: what counting readership costs on the poll path, measured side by side.
#
# What it measures
#   Two bantin servers from one binary, on copies of one SQLite store holding the bench feed
#   (/vi/kinh-te/rss.xml, 50 items, as bench/loadtest.sh): one counting readership (the default),
#   one with BANTIN_READERSHIP=off. For each scenario
#     gzip  a cached hit with Accept-Encoding: gzip                          -> 200, gzip body
#     304   Accept-Encoding: gzip + If-None-Match: the gzip ETag               -> 304, no body
#   wrk (-t2, --latency, 64 connections) runs against "on" then "off" (then "off" then "on" in the
#   next round, and so on), ROUNDS times, every request carrying an aggregator's User-Agent
#   (Feedly's, with its subscriber count), so counting does its whole job: the per-thread tally,
#   the User-Agent's hash and the client entry. It prints the median requests/s and p99 of each
#   and the ratio on/off, with the issue's goal (>= 0.97 for both scenarios), and checks that the
#   counting server did count (its /api/v1/stats has the polls) and the other did not.
#
#   Like with like: the two servers run on the same cores, each with one worker per core; wrk
#   shares those cores. Run it on an otherwise quiet machine: a cargo build elsewhere makes every
#   figure lower and the ratio noisier (alternating runs and medians damp, but do not remove, it).
#
# How to run (needs wrk, curl, python3):
#   bench/readership.sh                         # DURATION=10 ROUNDS=5: ~4 minutes of wrk
#   DURATION=3 ROUNDS=1 bench/readership.sh     # a quick smoke run
# Settings: DURATION, ROUNDS, CONNS=64, THREADS=2, WARMUP=2, PAUSE=1, SCENARIOS="gzip 304",
#   BANTIN_BIN, BUILD=1, OUT_DIR, ARTICLES=60 BODY_BYTES=3850 PROSE_SHARE=0.55.

set -Eeuo pipefail
PROG=readership
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
SERVE_RUST_LOG=0

DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-5}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
WARMUP=${WARMUP:-2}
PAUSE=${PAUSE:-1}
SCENARIOS=${SCENARIOS:-"gzip 304"}
ARTICLES=${ARTICLES:-60}
BODY_BYTES=${BODY_BYTES:-3850}
PROSE_SHARE=${PROSE_SHARE:-0.55}
FEED_PATH=/vi/kinh-te/rss.xml
PUBLIC_URL=https://feeds.baolongan.example
UA='Feedly/1.0 (+http://www.feedly.com/fetcher.html; 131 subscribers; )'
TOKEN=bench-token-0123456789abcdef

need -p "wrk curl python3" wrk curl python3 awk sort timeout
[[ $DURATION =~ ^[0-9]+$ && $DURATION -ge 1 ]] || die "DURATION must be a whole number of seconds"
[[ $ROUNDS =~ ^[0-9]+$ && $ROUNDS -ge 1 ]] || die "ROUNDS must be >= 1"

bench_init
RAW=$OUT_DIR/wrk
mkdir -p "$RAW"
RESULTS=$OUT_DIR/results.tsv
printf 'round\tscenario\tserver\trps\tp50_ms\tp99_ms\tbytes_per_req\tnon2xx3xx\tsocket_errors\n' >"$RESULTS"

find_bin

say "generating the bench corpus ($ARTICLES articles)..."
mkdir -p "$WORK/corpus"
python3 "$BENCH_DIR/gen_corpus.py" --count "$ARTICLES" --body-bytes "$BODY_BYTES" \
    --prose-share "$PROSE_SHARE" >"$WORK/corpus/bench.ndjson"
make_site "$WORK/site" "" "" 50
(cd "$REPO" && BANTIN_DATABASE_URL="sqlite://$WORK/on.db" timeout 300 "$BIN" --config "$WORK/site/site.toml" \
    import "$WORK/corpus/bench.ndjson") >"$WORK/import.log" 2>&1 ||
    { cat "$WORK/import.log" >&2; die "bantin import failed"; }
cp "$WORK/on.db" "$WORK/off.db"

PORT_ON=$(free_port)
start_bantin on "$WORK/site/site.toml" "sqlite://$WORK/on.db" "$PORT_ON" \
    BANTIN_PUBLIC_URL="$PUBLIC_URL" BANTIN_API_TOKEN="$TOKEN" BANTIN_READERSHIP=on
PORT_OFF=$(free_port)
start_bantin off "$WORK/site/site.toml" "sqlite://$WORK/off.db" "$PORT_OFF" \
    BANTIN_PUBLIC_URL="$PUBLIC_URL" BANTIN_API_TOKEN="$TOKEN" BANTIN_READERSHIP=off
declare -A PORT=([on]=$PORT_ON [off]=$PORT_OFF)

url() { echo "http://127.0.0.1:${PORT[$1]}$FEED_PATH"; }
ETAG=$(curl -fsS -D - -o /dev/null -H 'Accept-Encoding: gzip' "$(url on)" | awk -F': ' 'tolower($1) == "etag" {sub(/\r$/, "", $2); print $2}')
[[ -n $ETAG ]] || die "no ETag from $(url on)"
ETAG_OFF=$(curl -fsS -D - -o /dev/null -H 'Accept-Encoding: gzip' "$(url off)" | awk -F': ' 'tolower($1) == "etag" {sub(/\r$/, "", $2); print $2}')
[[ $ETAG == "$ETAG_OFF" ]] || die "the two servers serve different bytes ($ETAG vs $ETAG_OFF)"

run() { # ROUND SCENARIO SERVER
    local out=$RAW/$2-$3-$1.txt args=(-t"$THREADS" -c"$CONNS" --latency -H 'Accept-Encoding: gzip' -H "User-Agent: $UA")
    if [[ $2 == 304 ]]; then args+=(-H "If-None-Match: $ETAG"); fi
    timeout $((WARMUP + 30)) wrk "${args[@]}" -d"${WARMUP}s" "$(url "$3")" >/dev/null 2>&1 || true
    timeout $((DURATION + 30)) wrk "${args[@]}" -d"${DURATION}s" "$(url "$3")" >"$out" 2>&1 || true
    local line
    line=$(parse_wrk "$out")
    [[ $line != ERR ]] || die "wrk failed: $(cat "$out")"
    # shellcheck disable=SC2086
    printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$(echo $line | tr ' ' '\t')" >>"$RESULTS"
    say "  round $1 $2 $3: $(echo "$line" | cut -d' ' -f1) req/s"
    sleep "$PAUSE"
}

say "load: load average $(cut -d' ' -f1-3 /proc/loadavg)"
for ((r = 1; r <= ROUNDS; r++)); do
    for s in $SCENARIOS; do
        if ((r % 2)); then order="on off"; else order="off on"; fi
        for server in $order; do run "$r" "$s" "$server"; done
    done
done

# The counting server counted, the other did not.
sleep 1
polls() {
    curl -fsS -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:${PORT[$1]}/api/v1/stats?days=1" |
        python3 -c 'import json,sys; d=json.load(sys.stdin); print(sum(f["polls"] for day in d["days"] for f in day["feeds"]))'
}
# Flushes are every 5 s; give the last one time.
sleep 6
COUNTED_ON=$(polls on)
COUNTED_OFF=$(polls off)

median() { sort -g | awk '{v[NR] = $1} END {if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
col() { awk -F'\t' -v s="$1" -v v="$2" -v c="$3" 'NR > 1 && $2 == s && $3 == v {print $c}' "$RESULTS" | median; }

{
    echo "## Readership counting: on vs off ($(date -u +%Y-%m-%d), rev $REV)"
    echo
    echo "$(machine_line). wrk -t$THREADS -c$CONNS, ${DURATION} s per run, $ROUNDS alternating rounds, medians; User-Agent: Feedly's."
    echo
    echo "| scenario | on req/s | off req/s | on/off | goal | on p99 ms | off p99 ms |"
    echo "| --- | ---: | ---: | ---: | --- | ---: | ---: |"
    for s in $SCENARIOS; do
        on=$(col "$s" on 4)
        off=$(col "$s" off 4)
        ratio=$(awk -v a="$on" -v b="$off" 'BEGIN {printf "%.3f", a / b}')
        ok=$(awk -v r="$ratio" 'BEGIN {print (r >= 0.97 ? "met (>= 0.97)" : "NOT met (>= 0.97)")}')
        echo "| $s | $(fmt_int "$on") | $(fmt_int "$off") | $ratio | $ok | $(col "$s" on 6) | $(col "$s" off 6) |"
    done
    echo
    echo "Polls counted today: on $(fmt_int "$COUNTED_ON"), off $(fmt_int "$COUNTED_OFF")."
} | tee "$OUT_DIR/summary.md"
[[ $COUNTED_OFF == 0 && $COUNTED_ON -gt 0 ]] || die "the counting server should have counted and the other not"
