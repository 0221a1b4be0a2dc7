#!/usr/bin/env bash
# bench/cdn.sh: the CDN topology for real, all on 127.0.0.1: one PostgreSQL database, three
# bantin replicas on it (purging with [cdn] purge_kind = "xkey"), and Varnish in front running
# deploy/varnish/bantin.vcl with a backends.vcl naming the three (round robin, /healthz probes).
#
# What it measures (issue 19), each through Varnish:
#   1. Steady polling: wrk on every feed in the OPML, all three formats, gzip, every other
#      request revalidating with the ETag the feed had at the start (304s) -> origin requests
#      (varnishstat MAIN.backend_req, also checked against the replicas' own feed counters) per
#      1,000 client requests (MAIN.client_req). Goal <= 10 (1 %).
#   2. The same load plus one new article a second (bench/cdn_watch.py write, PUT through
#      Varnish) -> time from a write's answer until Varnish serves the new document on every
#      touched feed (language, category, tag, byline; identity and gzip): p50, p99, max (goal
#      p99 <= 1 s); and, from monitor clients polling those feeds all along, documents older than
#      one the same client saw before (goal 0). Origin per 1,000 again.
#   3. The load (now with a PARTNER_SHARE of partner requests, which Varnish always passes to a
#      replica) and the writes, while one replica is killed (SIGKILL) and restarted -> client
#      errors (wrk non-2xx/3xx and socket errors; writes failed). Goal 0.
#   4. Partner (?key=) and public requests alternating, alone (bench/cdn_watch.py partner) ->
#      partner answers not PASS, not private or without the full text, public answers with it,
#      and allocations in Varnish's cache storage meanwhile (SMA.s0.c_req; goal 0 each).
#   5. Only with PG_RESTART=1: the load and the writes while PostgreSQL is restarted
#      (pg_ctlcluster ... restart) -> client errors of the polls, failed writes, and the time from
#      the restart until writes succeed again. Off by default: it restarts the machine's shared
#      PostgreSQL, which other people's tests may be using.
#
# How to run (needs varnishd with the xkey vmod: apt-get install varnish varnish-modules; wrk,
# psql, python3, curl; a release build, made when missing):
#   bench/cdn.sh                           # ~3 minutes
#   PG_RESTART=1 bench/cdn.sh              # also step 5 (restarts the local PostgreSQL!)
# Answers >= 500 are logged (varnishlog) in OUT_DIR/errors.vsl; during steps 2 and 3 every purge
# (purges.vsl) and every backend fetch slower than 250 ms (slow-fetches.vsl), beside writes.log
# (when each write was answered and when each touched URL showed it) and kill.log.
# Settings: SPLIT_CPUS=1 SECONDS_STEADY=30 SECONDS_WRITES=30 SECONDS_KILL=30 SECONDS_PARTNER=10
#   CONNECTIONS=64 THREADS=2 ARTICLES=3000 PARTNER_SHARE=0.05 MONITORS=4
#   PG_ADMIN_URL, BANTIN_BIN, BUILD=1, KEEP=1, OUT_DIR
# Run it on an otherwise idle machine: it measures latency.

set -Eeuo pipefail
PROG=cdn
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_init

SECONDS_STEADY=${SECONDS_STEADY:-30}
SECONDS_WRITES=${SECONDS_WRITES:-30}
SECONDS_KILL=${SECONDS_KILL:-30}
SECONDS_PARTNER=${SECONDS_PARTNER:-10}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
ARTICLES=${ARTICLES:-3000}
PARTNER_SHARE=${PARTNER_SHARE:-0.05}
MONITORS=${MONITORS:-4}
PG_RESTART=${PG_RESTART:-0}
SPLIT_CPUS=${SPLIT_CPUS:-1}

need -p wrk wrk
need -p postgresql-client psql
need python3 curl awk sha256sum
VARNISHD=$(command -v varnishd || echo /usr/sbin/varnishd)
[[ -x $VARNISHD ]] || die "varnishd not found (Debian: apt-get install varnish varnish-modules)"
need -p varnish varnishstat
compgen -G '/usr/lib/*/varnish/vmods/libvmod_xkey.so' >/dev/null ||
    die "the xkey vmod is missing (Debian: apt-get install varnish-modules)"
find_bin

# In production the CDN tier and its clients run on other hosts than the origin. On one machine,
# SPLIT_CPUS=1 (the default, with 2 CPUs or more) keeps them apart: Varnish and wrk on the first
# half of the CPUs, the replicas on the second (PostgreSQL is the machine's, unpinned; the
# measuring clients are unpinned). Without it, 60,000 polls a second through Varnish leave every
# round trip of a write queued behind ~70 runnable threads, and the figures measure the
# scheduler (bench/cdn.sh in README "Measured" has both).
NCPU=$(nproc)
ON_EDGE=() ON_ORIGIN=()
if [[ $SPLIT_CPUS == 1 && $NCPU -ge 2 ]]; then
    need -p util-linux taskset
    span() { if [[ $1 == "$2" ]]; then echo "$1"; else echo "$1-$2"; fi; }
    ON_EDGE=(taskset -c "$(span 0 $((NCPU / 2 - 1)))")
    ON_ORIGIN=(taskset -c "$(span $((NCPU / 2)) $((NCPU - 1)))")
fi

TOKEN=bench-cdn-token-$$-0123456789
KEY=bench-cdn-partner-key-$$-abcdef
VPORT=$(free_port)
VARNISH=http://127.0.0.1:$VPORT
say "machine: $(machine_line)"
say "bantin $REV; $("$VARNISHD" -V 2>&1 | head -1); output in $OUT_DIR"

# Site: feeds/site.toml, no sample articles, summary for the public, one partner.
make_site "$WORK/site"
sed -i -e 's/^public_content = "full"/public_content = "summary"/' "$WORK/site/site.toml"
grep -q '^public_content = "summary"' "$WORK/site/site.toml" || die "could not set [access] public_content"
cat >>"$WORK/site/site.toml" <<EOF

[[partners]]
id = "bench"
name = "Bench partner"
key_sha256 = "$(printf '%s' "$KEY" | sha256sum | cut -d' ' -f1)"
EOF

# Store: a fresh database with an archive (both languages, every category, tags and bylines).
pg_create "bantin_cdn_$$"
DB=$PG_URL
say "corpus: $ARTICLES articles..."
python3 "$BENCH_DIR/gen_corpus.py" --mode archive --count "$ARTICLES" --body-bytes 1500 \
    --tags 60 --authors 20 --span-days 365 --id-prefix cdn >"$WORK/corpus.ndjson"
BANTIN_DATABASE_URL=$DB "$BIN" --config "$WORK/site/site.toml" import "$WORK/corpus.ndjson" \
    >"$OUT_DIR/import.log" 2>&1 || { tail "$OUT_DIR/import.log" >&2; die "import failed"; }

# Three replicas, every one purging Varnish by key.
PORTS=() REPLICA_PIDS=()
start_replica() { # INDEX (0-2) [PORT]
    local i=$1 port=${2:-$(free_port)}
    start_bantin "replica$i" "$WORK/site/site.toml" "$DB" "$port" \
        BANTIN_PUBLIC_URL="$VARNISH/" BANTIN_API_TOKEN="$TOKEN" \
        BANTIN_CDN_PURGE_URLS="$VARNISH/" BANTIN_CDN_PURGE_KIND=xkey "${ON_ORIGIN[@]}"
    PORTS[i]=$port
    REPLICA_PIDS[i]=$STARTED_PID
}
for i in 0 1 2; do start_replica "$i"; done

# Varnish: the shipped VCL, with this run's backends.
mkdir -p "$WORK/vcl"
{
    for i in 0 1 2; do
        echo "backend replica$i { .host = \"127.0.0.1\"; .port = \"${PORTS[i]}\"; .probe = bantin_ready; }"
    done
    echo 'sub vcl_init {'
    echo '    new replicas = directors.round_robin();'
    for i in 0 1 2; do echo "    replicas.add_backend(replica$i);"; done
    echo '}'
} >"$WORK/vcl/backends.vcl"
"${ON_EDGE[@]}" "$VARNISHD" -F -j none -n "$WORK/varnish" -a "127.0.0.1:$VPORT" -T none \
    -f "$REPO/deploy/varnish/bantin.vcl" -p "vcl_path=$WORK/vcl:$REPO/deploy/varnish" \
    -p http_gzip_support=off -s malloc,512m >"$OUT_DIR/varnishd.log" 2>&1 &
PIDS+=("$!")
for ((i = 0; i < 100; i++)); do
    curl -fsS --max-time 2 -o /dev/null "$VARNISH/healthz" 2>/dev/null && break
    sleep 0.2
done
curl -fsS --max-time 2 -o /dev/null "$VARNISH/healthz" || { cat "$OUT_DIR/varnishd.log" >&2; die "varnishd did not start"; }
# Every answer >= 500 Varnish gives, with its backend fetches, for a look afterwards.
varnishlog -n "$WORK/varnish" -g request -q 'RespStatus >= 500' >"$OUT_DIR/errors.vsl" 2>&1 &
PIDS+=("$!")
vstat() { varnishstat -n "$WORK/varnish" -1 -f "$1" | awk '{print $2}'; }
# The replicas' own count of feed answers (cache hits, 304s among them, and misses), summed.
origin_feed_answers() {
    local p total=0 v
    for p in "${PORTS[@]}"; do
        v=$(curl -fsS --max-time 5 "http://127.0.0.1:$p/metrics" |
            awk '/^bantin_(cache_hits|cache_misses)_total/ {s += $2} END {print s + 0}') || v=0
        total=$((total + ${v%.*}))
    done
    echo "$total"
}

# The feeds: every OPML outline in three formats, with its gzip ETag now (through Varnish).
curl -fsS "$VARNISH/feeds.opml" | grep -o 'xmlUrl="[^"]*"' | sed -e 's/^xmlUrl="//' -e 's/"$//' \
    -e "s#^$VARNISH##" >"$WORK/rss_paths"
: >"$WORK/paths"
while read -r p; do
    for f in rss.xml atom.xml feed.json; do echo "${p%rss.xml}$f"; done
done <"$WORK/rss_paths" >"$WORK/paths"
FEEDS=$(wc -l <"$WORK/paths")
[[ $FEEDS -gt 100 ]] || die "only $FEEDS feed URLs in the OPML"
make_lua() { # PARTNER_SHARE -> OUT_DIR/poll.lua
    {
        echo 'feeds = {'
        while read -r p; do
            etag=$(curl -fsS -o /dev/null -D - -H 'Accept-Encoding: gzip' "$VARNISH$p" |
                awk 'tolower($1) == "etag:" {sub(/\r$/, ""); print $2}')
            printf '  {"%s", [[%s]]},\n' "$p" "$etag"
        done <"$WORK/paths"
        echo '}'
        echo "key = \"$KEY\""
        echo "partner_share = $1"
        cat "$BENCH_DIR/cdn_poll.lua"
    } >"$OUT_DIR/poll.lua"
}
make_lua 0
say "$FEEDS feed URLs (${FEEDS}x3 cached objects with gzip, identity and br); warming done"

run_wrk() { # NAME SECONDS: wrk through Varnish; prints "rps p50 p99 requests non2xx3xx sockerr"
    "${ON_EDGE[@]}" wrk -t"$THREADS" -c"$CONNECTIONS" -d"${2}s" --latency -s "$OUT_DIR/poll.lua" "$VARNISH" \
        >"$OUT_DIR/wrk-$1.txt" 2>&1
    parse_wrk "$OUT_DIR/wrk-$1.txt" requests
}
# origin_delta BEFORE_CLIENT BEFORE_BACKEND -> "client backend per_1000"
origin_delta() {
    local c b
    c=$(($(vstat MAIN.client_req) - $1))
    b=$(($(vstat MAIN.backend_req) - $2))
    awk -v c="$c" -v b="$b" 'BEGIN {printf "%d %d %.2f\n", c, b, (c ? 1000 * b / c : 0)}'
}

# 1. Steady polling.
say "1. steady polling, ${SECONDS_STEADY}s..."
c0=$(vstat MAIN.client_req) b0=$(vstat MAIN.backend_req) o0=$(origin_feed_answers)
read -r S_RPS S_P50 S_P99 S_REQS S_NON S_SERR <<<"$(run_wrk steady "$SECONDS_STEADY")"
read -r S_CLIENT S_BACKEND S_PER1000 <<<"$(origin_delta "$c0" "$b0")"
S_ORIGIN_FEEDS=$(($(origin_feed_answers) - o0))
S_HITS=$(vstat MAIN.cache_hit)

# 2. Writes at 1/s during the load.
say "2. polling + one write a second, ${SECONDS_WRITES}s..."
c0=$(vstat MAIN.client_req) b0=$(vstat MAIN.backend_req)
# Where a slow write's (or step 3's slow request's) time goes: each purge's arrival (and its
# keys), and each backend fetch slower than 250 ms, with Varnish's timestamps, beside writes.log
# (each write's answer time and when each touched URL showed it) and kill.log. Until step 3 ends.
varnishlog -n "$WORK/varnish" -g request -q 'ReqMethod eq "PURGE"' -i Timestamp,ReqHeader \
    >"$OUT_DIR/purges.vsl" 2>&1 &
VLOG_PURGES=$!
varnishlog -n "$WORK/varnish" -g request -b -q 'Timestamp:Beresp[2] > 0.25' \
    -i Timestamp,BereqURL,BackendOpen,BereqHeader \
    >"$OUT_DIR/slow-fetches.vsl" 2>&1 &
VLOG_SLOW=$!
python3 "$BENCH_DIR/cdn_watch.py" write "$VARNISH" "$TOKEN" "$SECONDS_WRITES" "$MONITORS" \
    >"$OUT_DIR/writes.json" 2>"$OUT_DIR/writes.log" &
WATCH=$!
read -r W_RPS W_P50 W_P99 W_REQS W_NON W_SERR <<<"$(run_wrk writes $((SECONDS_WRITES + 2)))"
wait "$WATCH" || die "cdn_watch.py write failed: $(tail -3 "$OUT_DIR/writes.log")"
read -r W_CLIENT W_BACKEND W_PER1000 <<<"$(origin_delta "$c0" "$b0")"
jf() { python3 -c 'import json,sys; v = json.load(open(sys.argv[1]))[sys.argv[2]]; print("-" if v is None else (f"{v:.0f}" if isinstance(v, float) else v))' "$@"; }

# 3. One replica of three killed and restarted under load (with partner requests and writes).
say "3. replica 1 killed at +8 s and restarted at +18 s, ${SECONDS_KILL}s of load..."
make_lua "$PARTNER_SHARE"
python3 "$BENCH_DIR/cdn_watch.py" write "$VARNISH" "$TOKEN" $((SECONDS_KILL - 4)) 1 \
    >"$OUT_DIR/kill-writes.json" 2>"$OUT_DIR/kill-writes.log" &
WATCH=$!
(
    sleep 8
    kill -KILL "${REPLICA_PIDS[1]}"
    echo "killed at $(date +%T.%N)"
) >"$OUT_DIR/kill.log" 2>&1 &
KILLER=$!
run_wrk kill "$SECONDS_KILL" >"$OUT_DIR/kill-wrk.line" &
LOAD=$!
wait "$KILLER"
wait "${REPLICA_PIDS[1]}" 2>/dev/null || true
sleep 10
start_replica 1 "${PORTS[1]}"
echo "restarted at $(date +%T.%N)" >>"$OUT_DIR/kill.log"
wait "$LOAD"
read -r K_RPS K_P50 K_P99 K_REQS K_NON K_SERR <"$OUT_DIR/kill-wrk.line"
wait "$WATCH" || die "cdn_watch.py write (kill) failed: $(tail -3 "$OUT_DIR/kill-writes.log")"
kill "$VLOG_PURGES" "$VLOG_SLOW" 2>/dev/null || true

# 4. Partner requests alone (nothing else may allocate in the cache meanwhile), then alternating
# with public ones: never from the cache, never the public variant, nothing stored.
say "4. partner requests, then partner and public ones, ${SECONDS_PARTNER}s each..."
s0=$(vstat SMA.s0.c_req)
python3 "$BENCH_DIR/cdn_watch.py" partner "$VARNISH" "$KEY" "$SECONDS_PARTNER" "$WORK/paths" 0 \
    >"$OUT_DIR/partner-only.json" 2>"$OUT_DIR/partner.log"
P_ALLOC=$(($(vstat SMA.s0.c_req) - s0))
python3 "$BENCH_DIR/cdn_watch.py" partner "$VARNISH" "$KEY" "$SECONDS_PARTNER" "$WORK/paths" 1 \
    >"$OUT_DIR/partner.json" 2>>"$OUT_DIR/partner.log"

# 5. PostgreSQL restarted under load (opt-in).
if [[ $PG_RESTART == 1 ]]; then
    say "5. PostgreSQL restarted at +8 s under ${SECONDS_KILL}s of load..."
    python3 "$BENCH_DIR/cdn_watch.py" write "$VARNISH" "$TOKEN" $((SECONDS_KILL - 4)) 1 \
        >"$OUT_DIR/pg-writes.json" 2>"$OUT_DIR/pg-writes.log" &
    WATCH=$!
    run_wrk pg "$SECONDS_KILL" >"$OUT_DIR/pg-wrk.line" &
    LOAD=$!
    sleep 8
    T_RESTART=$(now)
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main restart
    T_UP=$(elapsed "$T_RESTART")
    wait "$LOAD"
    read -r G_RPS G_P50 G_P99 G_REQS G_NON G_SERR <"$OUT_DIR/pg-wrk.line"
    wait "$WATCH" || true
fi

# The report.
cat <<EOF

### bench/cdn.sh: Varnish in front of three replicas on PostgreSQL ($(date -u +%F))

$(machine_line); bantin $REV ($BIN); $("$VARNISHD" -V 2>&1 | head -1 | sed 's/ revision.*//');
PostgreSQL $(pg_psql -c 'SHOW server_version'); $ARTICLES articles, $FEEDS feed URLs; wrk -t$THREADS -c$CONNECTIONS;
CPUs: $(if [[ ${#ON_EDGE[@]} -gt 0 ]]; then echo "Varnish and wrk on CPU ${ON_EDGE[2]}, replicas on CPU ${ON_ORIGIN[2]}"; else echo "shared by all (SPLIT_CPUS=0)"; fi).

| step | measured | goal |
| --- | --- | --- |
| 1. steady polling, ${SECONDS_STEADY} s | $(fmt_int "$S_REQS") requests, $(fmt_int "$S_RPS")/s, p50 $S_P50 ms, p99 $S_P99 ms; origin $S_BACKEND fetches for $(fmt_int "$S_CLIENT") client requests = **$S_PER1000 per 1,000** (replicas' feed answers: $S_ORIGIN_FEEDS); errors $((S_NON + S_SERR)) | ≤ 10 per 1,000 |
| 2. + 1 write/s, ${SECONDS_WRITES} s | $(jf "$OUT_DIR/writes.json" writes) writes ($(jf "$OUT_DIR/writes.json" write_failures) failed); visible on every touched feed (4 feeds × identity, gzip) after p50 **$(jf "$OUT_DIR/writes.json" p50_ms) ms**, p99 **$(jf "$OUT_DIR/writes.json" p99_ms) ms**, max $(jf "$OUT_DIR/writes.json" max_ms) ms; not visible within 10 s: $(jf "$OUT_DIR/writes.json" not_visible); older after newer: **$(jf "$OUT_DIR/writes.json" regressions)** in $(jf "$OUT_DIR/writes.json" monitor_requests) monitor polls; origin $W_BACKEND for $(fmt_int "$W_CLIENT") = **$W_PER1000 per 1,000**; poll errors $((W_NON + W_SERR)) | p99 ≤ 1,000 ms; 0 |
| 3. replica killed and restarted, ${SECONDS_KILL} s, ${PARTNER_SHARE} partner share | $(fmt_int "$K_REQS") requests, p99 $K_P99 ms; client errors **$((K_NON + K_SERR))** (non-2xx/3xx $K_NON, socket $K_SERR); writes $(jf "$OUT_DIR/kill-writes.json" writes), failed **$(jf "$OUT_DIR/kill-writes.json" write_failures)**, visible p99 $(jf "$OUT_DIR/kill-writes.json" p99_ms) ms | 0 errors |
| 4. partner requests, ${SECONDS_PARTNER} s alone + ${SECONDS_PARTNER} s mixed | alone: $(jf "$OUT_DIR/partner-only.json" partner_requests) requests, cache allocations meanwhile **$P_ALLOC**, not PASS $(jf "$OUT_DIR/partner-only.json" partner_cached); mixed: $(jf "$OUT_DIR/partner.json" partner_requests) partner (not PASS $(jf "$OUT_DIR/partner.json" partner_cached), not private $(jf "$OUT_DIR/partner.json" partner_not_private), without full text $(jf "$OUT_DIR/partner.json" partner_without_full_text)) and $(jf "$OUT_DIR/partner.json" public_requests) public (with full text **$(jf "$OUT_DIR/partner.json" public_with_full_text)**); errors $(( $(jf "$OUT_DIR/partner-only.json" errors) + $(jf "$OUT_DIR/partner.json" errors) )) | 0 partner documents cached |
EOF
if [[ $PG_RESTART == 1 ]]; then
    echo "| 5. PostgreSQL restarted, ${SECONDS_KILL} s | restart took $T_UP s; $(fmt_int "$G_REQS") polls, errors **$((G_NON + G_SERR))**; writes $(jf "$OUT_DIR/pg-writes.json" writes), failed $(jf "$OUT_DIR/pg-writes.json" write_failures), visible p99 $(jf "$OUT_DIR/pg-writes.json" p99_ms) ms | Varnish keeps serving; writes resume |"
else
    echo "| 5. PostgreSQL restart | not run (PG_RESTART=1 runs it; it restarts the shared local PostgreSQL) | |"
fi
