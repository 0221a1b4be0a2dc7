#!/usr/bin/env bash
# bench/edge.sh: bantin and nginx side by side under hostile clients, on this machine.
#
# What it measures
#   A store of ARTICLES archive articles (bench/gen_corpus.py --mode archive: every language and
#   category, 300 tags, 40 bylines) behind bantin with a BUDGET-byte cache, and nginx (default
#   timeouts: the template's keepalive_timeout removed) serving bantin's bytes of /vi/rss.xml as
#   static files (gzip_static). Both run with an open-file limit of NOFILE. For each server:
#     alone      wrk -c CONNS, gzip hits of /vi/rss.xml: req/s and p99
#     slowloris  the same while bench/attack.py holds SLOWLORIS connections that send a request line
#                and then one header line every 5 s, never finishing
#     flood      the same while bench/attack.py holds NOFILE silent connections (the whole file
#                limit's worth), reopening each one the server closes after 1 s
#   and, during each attack, how long a new client waits for its first answer (curl, a fresh
#   connection, PROBES samples, max and median). bantin's resident memory, memfds and descriptors
#   are sampled throughout. Goals (issue 8): under attack, req/s >= 0.9x and p99 <= 2x of the
#   server's own unattacked figures; a new client served within 1 s during the flood.
#
#   Then a crawler's sweep of HTML previews and deep pages (bench/sweep.py deep) beside wrk's
#   normal client, with PROBES page-1 misses of feeds nobody asked for timed meanwhile (issue 20:
#   the client's p99 <= 2x its figure alone, a front-page miss <= 50 ms).
#
#   Then the readership bound (issue 20): READERS_SECONDS of a distinct-reader flood (wrk with
#   bench/readers.lua: every request a new User-Agent, round robin over every listed feed in all
#   three formats for the first half, over the first HOT_PATHS, which stay cached, for the
#   second), then /api/v1/stats?days=366 and GAUGE_WAIT seconds for the
#   once-a-minute subscriber gauge to be recomputed; bantin's footprint sampled every second
#   throughout (peak against BUDGET + OVERHEAD) and the store's size (database + WAL) before and
#   after (goal: a few MB at most).
#
#   Then the memory bound: every page of every feed in /feeds.opml in all three formats
#   (bench/sweep.py pages), then JUNK made-up feed URLs (unknown tags and bylines, pages far past
#   the end), and bantin's memory after each: resident anonymous memory + the bytes in its memfds
#   (the cached bodies, counted whether mapped or not) against BUDGET + the stated overhead
#   (OVERHEAD, 128 MiB).
#
# How to run (needs wrk, nginx, curl, python3; Debian's packages):
#   bench/edge.sh                      # ~12 minutes
#   DURATION=5 PROBES=3 bench/edge.sh  # quicker
# target/release/bantin is built when missing (BUILD=1 forces it). The Markdown summary is printed
# at the end and kept with every raw output in OUT_DIR (default: a new /tmp/bantin-edge.XXXXXX).
#
# Settings (environment): ARTICLES=20000 BUDGET=33554432 (32 MiB) OVERHEAD=134217728 (128 MiB)
#   NOFILE=4096 SLOWLORIS=2000 CONNS=64 DURATION=10 PROBES=5 JUNK=20000 THREADS=2 (wrk) ROUNDS=3
#   SETTLE=8 (seconds an attack builds up before measuring) SWEEP_THREADS=8 (the deep-page crawler)
#   READERS_SECONDS=60 HOT_PATHS=120 GAUGE_WAIT=65 SECTIONS='edge deep memory readers' (which parts to run)

set -Eeuo pipefail
PROG=edge
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
SERVE_RUST_LOG=0

ARTICLES=${ARTICLES:-20000}
BUDGET=${BUDGET:-33554432}
OVERHEAD=${OVERHEAD:-134217728}
NOFILE=${NOFILE:-4096}
SLOWLORIS=${SLOWLORIS:-2000}
CONNS=${CONNS:-64}
DURATION=${DURATION:-10}
PROBES=${PROBES:-5}
JUNK=${JUNK:-20000}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-3}
SETTLE=${SETTLE:-8}
SWEEP_THREADS=${SWEEP_THREADS:-8}
READERS_SECONDS=${READERS_SECONDS:-60}
SECTIONS=${SECTIONS:-edge deep memory readers}
GAUGE_WAIT=${GAUGE_WAIT:-65}
HOT_PATHS=${HOT_PATHS:-120}
TOKEN=edge-token-0123456789abcdef
FEED_PATH=/vi/rss.xml
PUBLIC_URL=${PUBLIC_URL:-https://feeds.baolongan.example}

need -p "wrk nginx curl python3 util-linux" wrk nginx curl python3 prlimit awk
ATTACK_PID=
SAMPLER_PID=
before_cleanup() {
    [[ -n $ATTACK_PID ]] && stop_pid "$ATTACK_PID"
    [[ -n $SAMPLER_PID ]] && stop_pid "$SAMPLER_PID"
    return 0
}
bench_init
RAW=$OUT_DIR/raw
mkdir -p "$RAW"
find_bin

# ---------------------------------------------------------------- corpus, store, servers
GEN_ARGS=(--mode archive --count "$ARTICLES" --body-bytes 1150)
CORPUS=$CACHE_DIR/archive-$(corpus_key "${GEN_ARGS[@]}")
cache_corpus "$CORPUS" "$ARTICLES articles into $CORPUS" \
    '{print > (d "/archive.ndjson")}'
make_site "$WORK/site" "" "" 50
sed -i -e "s/^max_bytes[[:space:]]*=.*/max_bytes = $BUDGET/" "$WORK/site/site.toml"
grep -q "^max_bytes = $BUDGET$" "$WORK/site/site.toml" || die "could not set [cache] max_bytes"
DB=sqlite://$WORK/edge.db
say "importing $ARTICLES articles..."
(cd "$REPO" && BANTIN_DATABASE_URL=$DB timeout 600 "$BIN" --config "$WORK/site/site.toml" \
    import "$CORPUS/archive.ndjson") >"$WORK/import.log" 2>&1 ||
    { tail "$WORK/import.log" >&2; die "import failed"; }

BANTIN_PORT=$(free_port)
start_bantin bantin "$WORK/site/site.toml" "$DB" "$BANTIN_PORT" BANTIN_PUBLIC_URL="$PUBLIC_URL" \
    BANTIN_API_TOKEN="$TOKEN" prlimit --nofile="$NOFILE":"$NOFILE" --
BANTIN_PID=$(pgrep -n -f "$BIN --config $WORK/site/site.toml serve" || echo "$STARTED_PID")
BANTIN=http://127.0.0.1:$BANTIN_PORT

DOCROOT=$WORK/nginx/html
mkdir -p "$DOCROOT/vi" "$WORK/nginx/tmp"
curl -fsS -o "$DOCROOT/vi/rss.xml" "$BANTIN$FEED_PATH"
curl -fsS -H 'Accept-Encoding: gzip' -o "$DOCROOT/vi/rss.xml.gz" "$BANTIN$FEED_PATH"
chmod -R a+rX "$OUT_DIR"
NGINX_PORT=$(free_port)
USER_LINE=
if ((EUID == 0)); then USER_LINE="user nobody $(id -gn nobody 2>/dev/null || echo nogroup);"; fi
# nginx as shipped: its default client_header_timeout (60 s) and keepalive_timeout (75 s).
sed -e "s|@PREFIX@|$WORK/nginx|g" -e "s|@PORT@|$NGINX_PORT|g" -e "s|@DOCROOT@|$DOCROOT|g" \
    -e "s|@USER_LINE@|$USER_LINE|" -e '/keepalive_timeout/d' \
    -e "s|@CACHE_CONTROL@|$(curl -fsS -o /dev/null -D - "$BANTIN$FEED_PATH" | awk 'BEGIN{IGNORECASE=1} /^cache-control:/ {sub(/^[^:]*: */, ""); sub(/\r$/, ""); print}')|" \
    "$BENCH_DIR/nginx.conf.template" >"$WORK/nginx/nginx.conf"
prlimit --nofile="$NOFILE":"$NOFILE" -- nginx -p "$WORK/nginx" -e "$WORK/nginx/error.log" \
    -c "$WORK/nginx/nginx.conf" >"$WORK/nginx/stdout.log" 2>&1 &
NGINX_PID=$!
PIDS+=("$NGINX_PID")
for ((i = 0; i < 50; i++)); do
    curl -fsS --max-time 2 -o /dev/null "http://127.0.0.1:$NGINX_PORT$FEED_PATH" 2>/dev/null && break
    sleep 0.2
done
GZIP_BYTES=$(stat -c %s "$DOCROOT/vi/rss.xml.gz")
say "bantin :$BANTIN_PORT (pid $BANTIN_PID), nginx :$NGINX_PORT; gzip body $GZIP_BYTES B"

mem() { python3 "$BENCH_DIR/sweep.py" "$BANTIN_PID" mem; } # rss anon shmem memfd_bytes memfds fds
sampler() { # OUT: peak "rss_kb fds" of bantin, every second, until killed. Cheap on purpose (one
    # read of /proc/PID/status, one directory listing): it runs beside the measurement, which the
    # nginx runs do not have.
    local out=$1 rss fds peak_rss=0 peak_fds=0
    while kill -0 "$BANTIN_PID" 2>/dev/null; do
        rss=$(awk '$1 == "VmRSS:" {print $2}' "/proc/$BANTIN_PID/status" 2>/dev/null) || break
        fds=$(find "/proc/$BANTIN_PID/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
        ((rss > peak_rss)) && peak_rss=$rss
        ((fds > peak_fds)) && peak_fds=$fds
        echo "$peak_rss $peak_fds" >"$out"
        sleep 1
    done
}

# first_answer URL: seconds until a fresh connection gets its first byte (10 = no answer in 10 s).
first_answer() {
    curl -s -o /dev/null -H 'Accept-Encoding: gzip' --max-time 10 -w '%{time_starttransfer}\n' "$1" 2>/dev/null ||
        echo 10
}

# measure SERVER PORT PHASE: wrk (and, under attack, new-client probes); appends to RESULTS.
RESULTS=$OUT_DIR/results.tsv
printf 'round\tserver\tphase\trps\tp50_ms\tp99_ms\tnon2xx\tsock_err\tprobe_max_s\tprobe_med_s\tpeak_rss_kb\tpeak_fds\tmemfd_b_after\n' >"$RESULTS"
measure() {
    local server=$1 port=$2 phase=$3 url out probes=() p med max peak="- - -"
    url=http://127.0.0.1:$port$FEED_PATH
    out=$RAW/$server-$phase-$ROUND.wrk
    if [[ $server == bantin ]]; then
        sampler "$RAW/peak-$phase" &
        SAMPLER_PID=$!
    fi
    if [[ $phase != alone ]]; then
        (for ((k = 0; k < PROBES; k++)); do
            sleep $((DURATION / (PROBES + 1) + 1))
            first_answer "$url"
        done) >"$RAW/$server-$phase-$ROUND.probes" &
        local prober=$!
    fi
    wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency -H 'Accept-Encoding: gzip' "$url" >"$out" 2>&1 || true
    if [[ $phase != alone ]]; then
        wait "$prober" || true
        mapfile -t probes < <(sort -n "$RAW/$server-$phase-$ROUND.probes")
        max=${probes[-1]:-10}
        med=${probes[$((${#probes[@]} / 2))]:-10}
    else
        max=- med=-
    fi
    if [[ -n $SAMPLER_PID ]]; then
        stop_pid "$SAMPLER_PID"
        SAMPLER_PID=
        peak="$(cat "$RAW/peak-$phase" 2>/dev/null || echo "- -") $(mem 2>/dev/null | awk '{print $4}')"
    fi
    read -r rps p50 p99 _ non serr < <(parse_wrk "$out")
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$ROUND" "$server" "$phase" "$rps" "$p50" "$p99" "$non" "$serr" \
        "$max" "$med" "${peak// /$'\t'}" >>"$RESULTS"
    say "  $server $phase: $rps req/s, p99 $p99 ms, new client max $max s (peak rss kB, fds; memfd bytes after: $peak)"
}

attack() { # PORT MODE COUNT: starts bench/attack.py for DURATION + SETTLE + 5 s; waits SETTLE s
    python3 "$BENCH_DIR/attack.py" "$1" "$2" "$3" $((DURATION + SETTLE + 5)) "$RAW/attack-$2-$1.stats" &
    ATTACK_PID=$!
    sleep "$SETTLE"
}
end_attack() {
    stop_pid "$ATTACK_PID"
    ATTACK_PID=
    sleep 2
}

want() { [[ " $SECTIONS " == *" $1 "* ]]; }
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
if want edge; then
say "warming up..."
wrk -t2 -c"$CONNS" -d3s -H 'Accept-Encoding: gzip' "$BANTIN$FEED_PATH" >/dev/null 2>&1 || true
wrk -t2 -c"$CONNS" -d3s -H 'Accept-Encoding: gzip' "http://127.0.0.1:$NGINX_PORT$FEED_PATH" >/dev/null 2>&1 || true
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
# Rounds alternate the servers, and the summary takes medians: this machine's throughput moves by
# +-20% from one run to the next, so one run of each says little.
for ((ROUND = 1; ROUND <= ROUNDS; ROUND++)); do
    for server in bantin nginx; do
        port=$BANTIN_PORT
        [[ $server == nginx ]] && port=$NGINX_PORT
        measure "$server" "$port" alone
        attack "$port" slowloris "$SLOWLORIS"
        measure "$server" "$port" slowloris
        end_attack
        attack "$port" silent "$NOFILE"
        measure "$server" "$port" flood
        end_attack
    done
done
fi

# ---------------------------------------------------------------- previews and deep pages
if want deep; then
# A crawler (bench/sweep.py deep, SWEEP_THREADS threads) asks for HTML previews and older pages of
# the listed feeds at random while wrk measures a normal client's hits and sweep.py misses times
# PROBES page-1 misses of feeds nobody asked for (goals, issue 20: p99 <= 2x alone, a miss <= 50 ms).
say "a normal client and page-1 misses during a sweep of previews and deep pages..."
python3 "$BENCH_DIR/sweep.py" "$BANTIN" deep $((DURATION + SETTLE)) "$SWEEP_THREADS" >"$RAW/deep.sweep" &
SWEEP_PID=$!
sleep "$SETTLE"
(sleep 1 && python3 "$BENCH_DIR/sweep.py" "$BANTIN" misses "$PROBES") >"$RAW/deep.misses" &
MISSES_PID=$!
wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency -H 'Accept-Encoding: gzip' "$BANTIN$FEED_PATH" \
    >"$RAW/bantin-deep.wrk" 2>&1 || true
wait "$MISSES_PID" || true
wait "$SWEEP_PID" || true
read -r deep_rps _ deep_p99 _ deep_non _ < <(parse_wrk "$RAW/bantin-deep.wrk")
read -r deep_n deep_status deep_s < <(cat "$RAW/deep.sweep")
read -r miss_n miss_max miss_med < <(cat "$RAW/deep.misses")
say "  normal client $deep_rps req/s, p99 $deep_p99 ms; sweep $deep_n requests ($deep_status) in $deep_s s;"
say "  $miss_n page-1 misses: max $miss_max ms, median $miss_med ms"

fi

# ---------------------------------------------------------------- memory bound
if want memory; then
say "sweeping every page of every feed (3 formats)..."
read -r rss0 anon0 _ mb0 _ _ < <(mem)
read -r n_pages pages_status pages_s < <(python3 "$BENCH_DIR/sweep.py" "$BANTIN" pages 4)
sleep 6 # one trim period
read -r rss1 anon1 shm1 mb1 fds1 _ < <(mem)
say "  $n_pages requests ($pages_status) in $pages_s s; rss $rss1 kB, anon $anon1 kB, memfds $mb1 B"
say "requesting $JUNK made-up feed URLs..."
read -r n_junk junk_status junk_s < <(python3 "$BENCH_DIR/sweep.py" "$BANTIN" junk "$JUNK" 4)
sleep 6
read -r rss2 anon2 _ mb2 fds2 _ < <(mem)
say "  $n_junk requests ($junk_status) in $junk_s s; rss $rss2 kB, anon $anon2 kB, memfds $mb2 B"
LIVE=$(curl -fsS "$BANTIN/metrics" | awk '/^bantin_cache_live_bytes /{print $2}')

fi

# ---------------------------------------------------------------- readership bound
if want readers; then
# store_bytes: the database's files on disk (with its WAL, which SQLite reuses but never shrinks);
# store_data: the bytes of pages in use, as a reader sees the database now (WAL included).
store_bytes() { du -cb "$WORK"/edge.db* 2>/dev/null | awk 'END {print $1}'; }
store_data() {
    python3 -c 'import sqlite3, sys
c = sqlite3.connect(sys.argv[1], timeout=10)
q = lambda p: c.execute("PRAGMA " + p).fetchone()[0]
print((q("page_count") - q("freelist_count")) * q("page_size"))' "$WORK/edge.db"
}
footprint_sampler() { # OUT: the peak footprint (anon + memfd bytes) every second, until killed
    local out=$1 peak=0 rss anon shm mb rest f
    while kill -0 "$BANTIN_PID" 2>/dev/null; do
        read -r rss anon shm mb rest < <(mem) || break
        f=$((anon * 1024 + mb))
        ((f > peak)) && peak=$f
        echo "$peak" >"$out"
        sleep 1
    done
}
say "readership: ${READERS_SECONDS}s of distinct readers over every feed, then stats?days=366 and a gauge refresh..."
python3 "$BENCH_DIR/sweep.py" "$BANTIN" paths >"$RAW/readers.paths"
n_paths=$(wc -l <"$RAW/readers.paths")
data0=$(store_data)
files0=$(store_bytes)
read -r _ anon3 _ mb3 _ _ < <(mem)
echo 0 >"$RAW/readers.peak"
footprint_sampler "$RAW/readers.peak" &
SAMPLER_PID=$!
# Two phases of READERS_SECONDS / 2: every listed path (most are misses, so this runs at the
# render rate: every feed gets readers), then the first HOT_PATHS paths, which the cache holds,
# at full speed (each feed gets hundreds of thousands of readers). The store must not grow in
# the second phase whatever the number of readers.
head -n "$HOT_PATHS" "$RAW/readers.paths" >"$RAW/readers.hot"
half=$((READERS_SECONDS / 2))
readers_n=0
readers_non=0
declare -a data rates
h=0
for list in readers.paths readers.hot; do
    h=$((h + 1))
    wrk -t"$THREADS" -c"$CONNS" -d"${half}s" -s "$BENCH_DIR/readers.lua" "$BANTIN" -- "$RAW/$list" \
        >"$RAW/readers-$h.wrk" 2>&1 || true
    read -r rps _ _ _ non _ < <(parse_wrk "$RAW/readers-$h.wrk")
    rates[h]=$rps
    readers_n=$((readers_n + $(awk '/requests in/ {print $1}' "$RAW/readers-$h.wrk")))
    readers_non=$((readers_non + ${non:-0}))
    sleep 6 # a flush interval, so what was counted is in the store
    data[h]=$(store_data)
    say "  phase $h ($list): $rps req/s; store data ${data[h]} B"
done
data1=${data[1]}
data2=${data[2]}
files1=$(store_bytes)
stats_s=$(curl -fsS -o "$RAW/stats366.json" -H "Authorization: Bearer $TOKEN" -w '%{time_total}' \
    "$BANTIN/api/v1/stats?days=366" || echo failed)
sleep "$GAUGE_WAIT"
data3=$(store_data)
files2=$(store_bytes)
stop_pid "$SAMPLER_PID"
SAMPLER_PID=
read -r _ anon4 _ mb4 _ _ < <(mem)
readers_peak=$(cat "$RAW/readers.peak")
curl -fsS "$BANTIN/metrics" >"$RAW/readers.metrics"
gauge_series=$(grep -c '^bantin_feed_subscribers{' "$RAW/readers.metrics" || true)
metric_lines=$(wc -l <"$RAW/readers.metrics")
say "  $readers_n requests ($readers_non non-2xx); data $data0 -> $data1 -> $data2 -> $data3 B, files $files0 -> $files2 B;"
say "  footprint peak $readers_peak B; stats?days=366 in $stats_s s; /metrics $metric_lines lines"

fi

# ---------------------------------------------------------------- summary
# val SERVER PHASE COLUMN: the median over the rounds (the upper one of an even count).
val() {
    awk -F'\t' -v s="$1" -v p="$2" -v c="$3" 'NR > 1 && $2 == s && $3 == p {print $c}' "$RESULTS" |
        sort -g | awk '{v[NR] = $1} END {if (NR) print v[int(NR / 2) + 1]; else print "-"}'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "-"; else printf "%.2f", a / b }'; }
kb_mb() { awk -v k="$1" 'BEGIN {printf "%.0f", k / 1024}'; }
b_mb() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1048576}'; }
SUMMARY=$OUT_DIR/summary.md
{
    echo "## bench/edge.sh — $(date -u +%Y-%m-%d) — bantin $REV"
    echo
    echo "Machine: $(machine_line) (load before: $LOAD_BEFORE)."
    echo "$ARTICLES articles; cache budget $(b_mb "$BUDGET") MiB; open-file limit $NOFILE for both servers;"
    echo "wrk -t$THREADS -c$CONNS -d${DURATION}s gzip hits of $FEED_PATH ($GZIP_BYTES B); slowloris: $SLOWLORIS"
    echo "connections; flood: $NOFILE silent connections, each reopened 1 s after the server closes it."
    echo
    if want edge; then
    echo "Medians of $ROUNDS rounds, alternating the servers."
    echo
    echo "| server | phase | req/s | × alone | p99 ms | × alone | new client max / median s | non-2xx, socket errors | peak RSS MB, fds |"
    echo "| --- | --- | ---: | ---: | ---: | ---: | --- | --- | --- |"
    for server in bantin nginx; do
        a_rps=$(val "$server" alone 4)
        a_p99=$(val "$server" alone 6)
        for phase in alone slowloris flood; do
            rps=$(val "$server" "$phase" 4)
            p99=$(val "$server" "$phase" 6)
            rss=$(val "$server" "$phase" 11)
            fds=$(val "$server" "$phase" 12)
            mem_col="-"
            [[ $server == bantin && $rss =~ ^[0-9]+$ ]] && mem_col="$(kb_mb "$rss"), $fds"
            echo "| $server | $phase | $(fmt_int "$rps") | $(ratio "$rps" "$a_rps") | $p99 | $(ratio "$p99" "$a_p99") | $(val "$server" "$phase" 9) / $(val "$server" "$phase" 10) | $(val "$server" "$phase" 7), $(val "$server" "$phase" 8) | $mem_col |"
        done
    done
    fi
    if want deep; then
    echo
    echo "During a sweep of previews and deep pages ($SWEEP_THREADS crawler threads: $deep_n requests, $deep_status, in $deep_s s):"
    echo
    echo "| normal client req/s | p99 ms | × alone | non-2xx | page-1 misses | miss max ms | miss median ms |"
    echo "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    echo "| $(fmt_int "$deep_rps") | $deep_p99 | $(ratio "$deep_p99" "$(val bantin alone 6)") | $deep_non | $miss_n | $miss_max | $miss_med |"
    fi
    if want memory; then
    echo
    echo "Memory (bantin; footprint = resident anonymous memory + bytes in memfds; bound = budget + $(b_mb "$OVERHEAD") MiB = $(b_mb $((BUDGET + OVERHEAD))) MiB):"
    echo
    echo "| after | requests | statuses | footprint MiB | RSS MiB | anon MiB | memfd MiB | fds |"
    echo "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |"
    echo "| start | - | - | $(b_mb $((anon0 * 1024 + mb0))) | $(kb_mb "$rss0") | $(kb_mb "$anon0") | $(b_mb "$mb0") | - |"
    echo "| every page of every feed | $(fmt_int "$n_pages") | $pages_status | $(b_mb $((anon1 * 1024 + mb1))) | $(kb_mb "$rss1") | $(kb_mb "$anon1") | $(b_mb "$mb1") | $fds1 |"
    echo "| $JUNK made-up feed URLs | $(fmt_int "$n_junk") | $junk_status | $(b_mb $((anon2 * 1024 + mb2))) | $(kb_mb "$rss2") | $(kb_mb "$anon2") | $(b_mb "$mb2") | $fds2 |"
    echo
    echo "bantin_cache_live_bytes after the sweeps: $LIVE (budget $BUDGET)."
    foot=$((anon2 * 1024 + mb2))
    if ((foot <= BUDGET + OVERHEAD)); then
        echo "Footprint within budget + overhead: yes ($(b_mb "$foot") MiB)."
    else
        echo "Footprint within budget + overhead: NO ($(b_mb "$foot") MiB)."
    fi
    fi
    if want readers; then
    echo
    echo "Readership under a flood of distinct readers (wrk -t$THREADS -c$CONNS, bench/readers.lua: a new User-Agent per request): ${half} s over all $n_paths listed feed paths (${rates[1]} req/s: most are misses), then ${half} s over the first $HOT_PATHS, cached (${rates[2]} req/s); then /api/v1/stats?days=366 and ${GAUGE_WAIT} s for a gauge refresh. Store data = pages in use; files = database + WAL on disk:"
    echo
    echo "| requests | non-2xx | store data MB: before → all paths → hot paths → after gauge | growth in the hot phase MB | files MB before → after | stats?days=366 s | footprint before / peak / after MiB | within bound | /metrics lines, gauge series |"
    echo "| ---: | ---: | --- | ---: | --- | ---: | --- | --- | --- |"
    within=no
    ((readers_peak <= BUDGET + OVERHEAD)) && within=yes
    echo "| $(fmt_int "$readers_n") | $readers_non | $(b_mb "$data0") → $(b_mb "$data1") → $(b_mb "$data2") → $(b_mb "$data3") | $(b_mb $((data2 - data1))) | $(b_mb "$files0") → $(b_mb "$files2") | $stats_s | $(b_mb $((anon3 * 1024 + mb3))) / $(b_mb "$readers_peak") / $(b_mb $((anon4 * 1024 + mb4))) | $within | $metric_lines, $gauge_series |"
    fi
} >"$SUMMARY"
cat "$SUMMARY"
say "raw outputs in $OUT_DIR"
