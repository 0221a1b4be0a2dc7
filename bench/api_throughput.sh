#!/usr/bin/env bash
# bench/api_throughput.sh: throughput of the publishing API, on each backend.
#
# What it measures (the issue: "throughput of the batch endpoint (articles/s for 100,000 articles
# of ~5 KB into SQLite) and of single PUTs at 16 concurrent clients")
#
#   `bantin serve` on a fresh store (a new SQLite file; a new PostgreSQL database, dropped at the
#   end) with an API token and an empty articles_dir, then:
#     batch  BATCH_N articles (~5 KB NDJSON lines from `bench/gen_corpus.py --mode archive`: vi and
#            en, 7 categories, 300 tags, 40 bylines, ten years of distinct dates), POSTed to
#            /api/v1/articles as application/x-ndjson with `curl --data-binary @file`, one request
#            after another, BATCH_LINES articles per request. The default, 25,000 (~128 MB), keeps
#            each body under bantin's default 256 MiB batch limit: 100,000 articles are 4 requests.
#            BATCH_LINES=0 sends everything as one body, with [api] max_batch_bytes raised to fit.
#            Each response's summary must say every line was created. -> articles/s over the wall
#            time of all the requests (curl reading the file included).
#     PUT    wrk -t$PUT_THREADS -c$PUT_CONNS -d${PUT_SECONDS}s --latency with bench/api_put.lua: every
#            request PUTs a new article id (put-<thread>-<n>) with a ~5 KB JSON body (a generated
#            article as the template, the id in the URL, url and published_at varied per request),
#            into the store that already holds the batch articles. -> requests/s, p50, p99; the
#            Lua script counts statuses (all must be 201), then the script checks /readyz, GETs a
#            sample of the PUT ids back through the API and counts the put-* rows in the database
#            (up to one in-flight request per connection may land after wrk stops counting).
#   The server log is scanned for ERROR / WARN lines afterwards.
#
# How to run (from anywhere; needs python3, curl, wrk; psql for PostgreSQL; sqlite3 to count the
# SQLite rows, else the count comes from the API sample only):
#   bench/api_throughput.sh                                      # 100,000 batch articles, 30 s of PUTs
#   BATCH_N=10000 PUT_SECONDS=5 bench/api_throughput.sh          # a smoke run
#   BACKENDS=sqlite BATCH_LINES=0 bench/api_throughput.sh        # one 500 MB body, SQLite only
#
# Settings (environment):
#   BATCH_N=100000  BATCH_LINES=25000  BODY_BYTES=4200 (content_html target -> ~5.1 KB lines)
#   PUT_SECONDS=30  PUT_CONNS=16  PUT_THREADS=2   BACKENDS="sqlite postgres"   SEED=11
#   PG_ADMIN_URL=postgres://postgres@127.0.0.1:5432   CACHE_DIR (default ~/.cache/bantin-bench)
#   OUT_DIR (default a new /tmp/bantin-api_throughput.XXXXXX)   BANTIN_BIN, BUILD=1, KEEP=1

set -Eeuo pipefail
PROG=api_throughput
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BATCH_N=${BATCH_N:-100000}
BATCH_LINES=${BATCH_LINES:-25000}
BODY_BYTES=${BODY_BYTES:-4200}
PUT_SECONDS=${PUT_SECONDS:-30}
PUT_CONNS=${PUT_CONNS:-16}
PUT_THREADS=${PUT_THREADS:-2}
BACKENDS=${BACKENDS:-"sqlite postgres"}
SEED=${SEED:-11}
TOKEN=bench-token-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')

[[ $BATCH_N =~ ^[0-9]+$ && $BATCH_N -ge 1 ]] || die "BATCH_N must be >= 1"
[[ $BATCH_LINES =~ ^[0-9]+$ ]] || die "BATCH_LINES must be a whole number (0: one body)"
[[ $PUT_SECONDS =~ ^[0-9]+$ && $PUT_SECONDS -ge 1 ]] || die "PUT_SECONDS must be >= 1"
for b in $BACKENDS; do [[ $b == sqlite || $b == postgres ]] || die "unknown backend '$b' (sqlite, postgres)"; done
need python3 curl wrk awk sha256sum
[[ " $BACKENDS " == *" postgres "* ]] && need psql
HAVE_SQLITE3=0
command -v sqlite3 >/dev/null 2>&1 && HAVE_SQLITE3=1

bench_init
find_bin
results_init

# ---------------------------------------------------------------- corpus (cached) and PUT template
GEN_ARGS=(--mode archive --count "$BATCH_N" --body-bytes "$BODY_BYTES" --seed "$SEED" --id-prefix api)
KEY=$(corpus_key "${GEN_ARGS[@]}" "split $BATCH_LINES")
CORPUS=$CACHE_DIR/api-$BATCH_N-$KEY
cache_corpus "$CORPUS" "$BATCH_N articles into $CORPUS" -v c="$BATCH_LINES" '
    { f = sprintf("%s/batch-%04d.ndjson", d, c > 0 ? int((NR - 1) / c) : 0)
      if (f != prev) { if (prev != "") close(prev); prev = f }
      print > f }'
BATCH_FILES=("$CORPUS"/batch-*.ndjson)
CORPUS_BYTES=$(cat "${BATCH_FILES[@]}" | wc -c)
n_lines=$(cat "${BATCH_FILES[@]}" | wc -l)
((n_lines == BATCH_N)) || die "corpus in $CORPUS has $n_lines lines, not $BATCH_N: delete it and rerun"
AVG_LINE=$((CORPUS_BYTES / BATCH_N))
say "  $BATCH_N articles, $(fmt_mb "$CORPUS_BYTES"), $AVG_LINE B per line on average, ${#BATCH_FILES[@]} request(s)"

# The PUT body: one more generated article of the same size, with %ID% as its id and in its url
# and title, and %TS% as published_at, for bench/api_put.lua to fill in. (The id stays in the
# body: bantin answers 422 "missing field `id`" to a body without one, although its handler
# means to take a missing id from the URL.)
python3 "$BENCH_DIR/gen_corpus.py" --mode archive --count 1 --body-bytes "$BODY_BYTES" --seed $((SEED + 1)) \
    --id-prefix tpl | python3 -c '
import json, sys
a = json.loads(sys.stdin.readline())
a["id"] = "%ID%"
a["url"] = a["url"].rsplit("/", 1)[0] + "/%ID%"
a["title"] = "%ID% " + a["title"]
a["published_at"] = "%TS%"
a.pop("updated_at", None)
sys.stdout.write(json.dumps(a, ensure_ascii=False))
' >"$WORK/put-template.json"
PUT_BODY_BYTES=$(($(wc -c <"$WORK/put-template.json") - 4 * 4 + 3 * 11 + 25)) # ids like put-1-12345

MAX_BATCH=
if ((BATCH_LINES == 0)); then MAX_BATCH=$((CORPUS_BYTES + (1 << 20))); fi
make_site "$WORK/site" "" "$MAX_BATCH"
CONFIG=$WORK/site/site.toml

count_rows() { # BACKEND DB_URL PATH LIKE -> count, or "?"
    if [[ $1 == sqlite ]]; then
        if ((HAVE_SQLITE3)); then sqlite3 "$3" "SELECT count(*) FROM articles WHERE id LIKE '$4'"; else echo "?"; fi
    else
        psql "$2" -X -At -c "SELECT count(*) FROM articles WHERE id LIKE '$4'"
    fi
}

# ---------------------------------------------------------------- per backend
for backend in $BACKENDS; do
    say "backend $backend:"
    new_store "$backend" api
    path=$STORE_PATH url=$STORE_URL
    port=$(free_port)
    start_bantin "serve-$backend" "$CONFIG" "$url" "$port" BANTIN_API_TOKEN="$TOKEN"
    pid=$STARTED_PID
    base=http://127.0.0.1:$port

    # ---- batch
    say "  [$backend] POST $BATCH_N articles in ${#BATCH_FILES[@]} request(s)..."
    t0=$(now)
    i=0
    for f in "${BATCH_FILES[@]}"; do
        resp=$OUT_DIR/batch-$backend-$i.json
        lines=$(wc -l <"$f")
        t1=$(now)
        code=$(curl -sS --max-time 3600 -o "$resp" -w '%{http_code}' -X POST \
            -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/x-ndjson' \
            --data-binary "@$f" "$base/api/v1/articles") || die "POST of $f failed (curl)"
        secs=$(elapsed "$t1")
        [[ $code == 200 ]] || die "POST of $f answered $code: $(head -c 500 "$resp")"
        summary=$(python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))["summary"]
print(" ".join(f"{k}={s[k]}" for k in ("created", "updated", "unchanged", "conflict", "invalid")))
' "$resp")
        [[ $summary == "created=$lines updated=0 unchanged=0 conflict=0 invalid=0" ]] ||
            die "POST of $f ($lines lines): summary $summary (response: $resp)"
        say "    request $((i + 1)): $lines lines, $(fmt_mb "$(stat -c %s "$f")"), $secs s, $(fmt_int "$(awk -v n="$lines" -v s="$secs" 'BEGIN {print n / s}')")/s: $summary"
        i=$((i + 1))
    done
    batch_s=$(elapsed "$t0")
    put "$backend" batch_s "$batch_s"
    stored=$(count_rows "$backend" "$url" "$path" 'api-%')
    [[ $stored == "?" || $stored == "$BATCH_N" ]] || die "$backend holds $stored api-* articles after the batch, not $BATCH_N"
    put "$backend" batch_stored "$stored"
    say "    $BATCH_N articles in $batch_s s: $(fmt_int "$(awk -v n="$BATCH_N" -v s="$batch_s" 'BEGIN {print n / s}')") articles/s ($stored stored)"
    curl -fsS -o /dev/null "$base/readyz" || die "/readyz failed after the batch"

    # ---- PUTs
    say "  [$backend] PUT: wrk -t$PUT_THREADS -c$PUT_CONNS -d${PUT_SECONDS}s, a new id per request..."
    out=$OUT_DIR/wrk-put-$backend.txt
    TEMPLATE_FILE=$WORK/put-template.json BANTIN_TOKEN=$TOKEN ID_PREFIX=put \
        timeout $((PUT_SECONDS + 60)) wrk -t"$PUT_THREADS" -c"$PUT_CONNS" -d"${PUT_SECONDS}s" --latency \
        -s "$BENCH_DIR/api_put.lua" "$base" >"$out" 2>&1 || die "wrk failed (see $out)"
    kill -0 "$pid" 2>/dev/null || die "bantin died during the PUTs (log: $OUT_DIR/serve-$backend.log)"
    read -r rps p50 p99 reqs non serr <<<"$(parse_wrk "$out" requests)"
    [[ $rps != ERR ]] || die "could not parse $out"
    stats=$(grep '^PUTSTATS' "$out" | tail -n 1 || true)
    [[ -n $stats ]] || die "no PUTSTATS line from bench/api_put.lua in $out"
    created=$(sed -E 's/.* created=([0-9]+).*/\1/' <<<"$stats")
    other=$(sed -E 's/.* other=([0-9]+).*/\1/' <<<"$stats")
    say "    $rps req/s, p50 $p50 ms, p99 $p99 ms; $stats; wrk: $reqs requests, non-2xx/3xx $non, socket errors $serr"
    put "$backend" put "$rps $p50 $p99 $reqs $non $serr $created $other"
    ((other == 0 && non == 0)) || say "    WARNING: $other PUTs were not 201 (first: $(sed -E 's/.*first_bad=//' <<<"$stats"))"

    # ---- checks
    ready=$(curl -sS -o "$OUT_DIR/readyz-$backend.txt" -w '%{http_code}' "$base/readyz" || true)
    put "$backend" readyz "$ready"
    stored=$(count_rows "$backend" "$url" "$path" 'put-%')
    put "$backend" put_stored "$stored"
    if [[ $stored != "?" ]]; then
        extra=$((stored - created))
        ((extra >= 0 && extra <= PUT_CONNS)) ||
            say "    WARNING: $stored put-* rows stored for $created PUTs answered 201 (in flight at the end: at most $PUT_CONNS)"
    fi
    sample_ok=0
    sample_n=0
    for ((t = 1; t <= PUT_THREADS; t++)); do
        # (n = 1 of thread 1 is never sent: wrk calls request() once to check the script.)
        for n in 2 3 50 100 $((created / PUT_THREADS / 2)); do
            id=put-$t-$n
            sample_n=$((sample_n + 1))
            c=$(curl -sS -o "$WORK/get.json" -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "$base/api/v1/articles/$id" || true)
            if [[ $c == 200 ]] && python3 -c '
import json, sys
a = json.load(open(sys.argv[1]))
assert a["id"] == sys.argv[2] and a["url"].endswith("/" + sys.argv[2]) and a["title"].startswith(sys.argv[2] + " "), a["id"]
' "$WORK/get.json" "$id" 2>/dev/null; then
                sample_ok=$((sample_ok + 1))
            else
                say "    GET /api/v1/articles/$id: $c"
            fi
        done
    done
    put "$backend" sample "$sample_ok/$sample_n"
    stop_pid "$pid"
    log=$OUT_DIR/serve-$backend.log
    errs=$(grep -c '"level":"ERROR"' "$log" || true)
    warns=$(grep -c '"level":"WARN"' "$log" || true)
    put "$backend" log "$errs $warns"
    say "    /readyz $ready; $stored put-* rows stored; GET sample $sample_ok/$sample_n; server log: $errs ERROR, $warns WARN lines"
    put "$backend" size "$(db_size "$backend" "$url" "$path")"
    drop_store "$backend" api "$path"
done

# ---------------------------------------------------------------- summary
SUMMARY=$OUT_DIR/summary.md
{
    echo "### bantin publishing API throughput"
    echo
    echo "- Machine: $(machine_line)"
    pg_note=
    [[ " $BACKENDS " == *" postgres "* ]] && pg_note="; PostgreSQL $(get postgres version) on $PG_ADMIN_URL"
    echo "- bantin $REV ($BIN)$pg_note; $( (wrk --version 2>&1 || true) | awk 'NR == 1 {print $1, $2}'), curl $(curl --version | awk 'NR == 1 {print $2}'), all on this machine"
    if ((BATCH_LINES == 0)); then
        how="one request of $(fmt_int "$BATCH_N") lines ([api] max_batch_bytes raised to $(fmt_mb "$MAX_BATCH"))"
    else
        how="${#BATCH_FILES[@]} sequential request(s) of up to $(fmt_int "$BATCH_LINES") lines (each body under the default 256 MiB limit)"
    fi
    echo "- Batch: POST /api/v1/articles (application/x-ndjson, \`curl --data-binary @file\`), $how; $(fmt_int "$BATCH_N") articles of $AVG_LINE B on average ($(fmt_mb "$CORPUS_BYTES")) from \`bench/gen_corpus.py ${GEN_ARGS[*]}\`, into an empty store"
    echo "- PUT: wrk -t$PUT_THREADS -c$PUT_CONNS -d${PUT_SECONDS}s --latency, bench/api_put.lua: a new id per request, $(fmt_int "$PUT_BODY_BYTES") B JSON bodies, into the store holding the batch articles"
    echo
    echo "| backend | batch: $(fmt_int "$BATCH_N") articles | batch articles/s | PUT requests/s (c$PUT_CONNS) | PUT p50 | PUT p99 | PUTs answered 201 / other | put-* rows stored | checks | DB size at the end |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |"
    for b in $BACKENDS; do
        bs=$(get "$b" batch_s)
        read -r rps p50 p99 reqs non serr created other <<<"$(get "$b" put)"
        read -r errs warns <<<"$(get "$b" log)"
        checks="/readyz $(get "$b" readyz), GET sample $(get "$b" sample) ok, wrk non-2xx $non, socket errors $serr, log $errs ERROR / $warns WARN"
        echo "| $b | $(printf '%.1f' "$bs") s | **$(fmt_int "$(awk -v n="$BATCH_N" -v s="$bs" 'BEGIN {print n / s}')")** | **$(fmt_int "$rps")** | $(printf '%.2f' "$p50") ms | $(printf '%.2f' "$p99") ms | $(fmt_int "$created") / $other | $(fmt_int "$(get "$b" put_stored)") | $checks | $(fmt_mb "$(get "$b" size)") |"
    done
} >"$SUMMARY"

echo
echo "Results: $RESULTS; logs, responses and wrk output: $OUT_DIR"
echo
cat "$SUMMARY"
