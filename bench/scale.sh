#!/usr/bin/env bash
# bench/scale.sh: bantin with a large store, on each backend (SQLite, PostgreSQL).
#
# What it measures (the issue: "import 1,000,000 articles (~2 KB each) into each backend
# (articles/s), then the latency of an uncached feed page at 1,000 and at 1,000,000 articles (the
# ratio should stay near 1: keyset, not OFFSET), and the database size")
#
#   Corpus: SCALE_N articles (~2 KB NDJSON lines) from `bench/gen_corpus.py --mode archive`:
#   vi and en, all 7 categories, 300 Zipf-weighted tags, 40 bylines, published one after another
#   over ten years (distinct instants, newest first), ids scale-0000000... The SMALL newest
#   articles (the first SMALL lines) are all vi / kinh-te, so the three measured pages, page 1 of
#   /vi/rss.xml, page 1 of /vi/kinh-te/rss.xml and page 20 of /vi/kinh-te/rss.xml (items 951-1000,
#   the last page of the small store), hold the very same articles at SMALL and at SCALE_N: the
#   render and compression work is identical, and the ratio isolates the store. The corpus is
#   cached in CACHE_DIR (keyed by the generator's source and arguments), already split into the
#   first SMALL lines and files of IMPORT_CHUNK lines for the rest.
#
#   For each backend in BACKENDS, on a fresh store (a new SQLite file; a new PostgreSQL database,
#   dropped at the end):
#     1. `bantin import` the first SMALL articles (wall time -> articles/s)
#     2. uncached-page latency at SMALL (see below); database size
#     3. `bantin import` the other SCALE_N - SMALL, in one process (wall time -> articles/s; the
#        whole import's articles/s is SCALE_N / (time 1 + time 3)); peak RSS of each import
#     4. uncached-page latency at SCALE_N; database size (SQLite: the file + -wal + -shm;
#        PostgreSQL: pg_database_size), row counts checked against the corpus
#   and prints a Markdown table with the latency ratio SCALE_N / SMALL per page.
#
#   Uncached-page latency, two ways (MISS="criterion http" by default):
#     criterion  `BANTIN_BENCH_DATABASE_URL=<store> cargo bench --bench render --
#                "miss on an existing store"`: in-process query + render + gzip + brotli (the
#                criterion median per bench). Built from the working tree, so it needs the Rust
#                toolchain; a failed build or a bench that reports nothing is a warning, not fatal.
#     http       `bantin serve` on the store with [cache] ttl = 1, and HTTP_ROUNDS rounds of GET
#                (Accept-Encoding: gzip, one keep-alive connection) of the three pages, 1.25 s
#                apart, so every request is a cache miss (checked against the server's
#                cache_misses counter): end-to-end miss latency, median and p90.
#   PostgreSQL is ANALYZEd after each import (PG_ANALYZE=1), as autovacuum would do shortly
#   after a bulk load; PG_ANALYZE=0 measures the plans without statistics.
#
# How to run (from anywhere; needs python3, curl, awk, split; psql for PostgreSQL; cargo for the
# criterion measurement; sqlite3 for SQLite row counts and the page-usage line):
#   bench/scale.sh                                   # 1,000,000 articles, both backends
#   SCALE_N=20000 bench/scale.sh                     # a smoke run
#   BACKENDS=sqlite MISS=http SCALE_N=100000 bench/scale.sh
# Run it on an otherwise idle machine: it measures throughput and latency.
#
# Settings (environment):
#   SCALE_N=1000000   articles in the big store     SMALL=1000       articles in the small store
#   BODY_BYTES=1150   content_html target (-> ~2 KB lines)   SEED=7
#   BACKENDS="sqlite postgres"   MISS="criterion http"   HTTP_ROUNDS=25
#   IMPORT_CHUNK=50000  lines per NDJSON file of step 3 (0: one file; see the note in the summary)
#   PG_ADMIN_URL=postgres://postgres@127.0.0.1:5432   PG_ANALYZE=1
#   CACHE_DIR (default ~/.cache/bantin-bench; the 1M corpus takes ~2 GB there, delete at will)
#   OUT_DIR (default a new /tmp/bantin-scale.XXXXXX; the 1M SQLite store, ~5 GB, lives there
#   until its backend is done)
#   BANTIN_BIN, BUILD=1, BUILD_TIMEOUT=1800, BENCH_TIMEOUT=1800 (per cargo bench run), KEEP=1

set -Eeuo pipefail
PROG=scale
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SCALE_N=${SCALE_N:-1000000}
SMALL=${SMALL:-1000}
BODY_BYTES=${BODY_BYTES:-1150}
SEED=${SEED:-7}
BACKENDS=${BACKENDS:-"sqlite postgres"}
MISS=${MISS:-"criterion http"}
HTTP_ROUNDS=${HTTP_ROUNDS:-25}
IMPORT_CHUNK=${IMPORT_CHUNK:-50000}
PG_ANALYZE=${PG_ANALYZE:-1}
BENCH_TIMEOUT=${BENCH_TIMEOUT:-1800}
CRIT_GROUP="miss on an existing store"
PAGES=("/vi/rss.xml" "/vi/kinh-te/rss.xml" "/vi/kinh-te/rss.xml?page=20")

[[ $SCALE_N =~ ^[0-9]+$ && $SMALL =~ ^[0-9]+$ ]] || die "SCALE_N and SMALL must be whole numbers"
((SMALL >= 1000)) || say "warning: SMALL=$SMALL < 1000: page 20 of the category does not exist in the small store"
((SCALE_N > SMALL)) || die "SCALE_N ($SCALE_N) must be larger than SMALL ($SMALL)"
[[ $IMPORT_CHUNK =~ ^[0-9]+$ ]] || die "IMPORT_CHUNK must be a whole number (0: one file)"
for b in $BACKENDS; do [[ $b == sqlite || $b == postgres ]] || die "unknown backend '$b' (sqlite, postgres)"; done
for m in $MISS; do [[ $m == criterion || $m == http ]] || die "unknown MISS method '$m' (criterion, http)"; done

need python3 curl awk split sha256sum
[[ " $BACKENDS " == *" postgres "* ]] && need psql
[[ " $MISS " == *" criterion "* ]] && need cargo
HAVE_SQLITE3=0
command -v sqlite3 >/dev/null 2>&1 && HAVE_SQLITE3=1
TIME_BIN=
[[ -x /usr/bin/time ]] && TIME_BIN=/usr/bin/time

bench_init
find_bin
results_init

# ---------------------------------------------------------------- corpus (cached)
GEN_ARGS=(--mode archive --count "$SCALE_N" --body-bytes "$BODY_BYTES" --seed "$SEED" --head "$SMALL"
    --lang vi --category kinh-te --id-prefix scale)
KEY=$(corpus_key "${GEN_ARGS[@]}" "split $SMALL $IMPORT_CHUNK")
CORPUS=$CACHE_DIR/scale-$SCALE_N-$KEY
# First SMALL lines to head.ndjson, the rest to tail-00000.ndjson... of IMPORT_CHUNK lines.
cache_corpus "$CORPUS" "$SCALE_N articles into $CORPUS (python3 bench/gen_corpus.py ${GEN_ARGS[*]})" \
    -v s="$SMALL" -v c="$IMPORT_CHUNK" '
        NR <= s { print > (d "/head.ndjson"); next }
        { f = sprintf("%s/tail-%05d.ndjson", d, c > 0 ? int((NR - s - 1) / c) : 0)
          if (f != prev) { if (prev != "") close(prev); prev = f }
          print > f }'
HEAD_FILE=$CORPUS/head.ndjson
TAIL_FILES=("$CORPUS"/tail-*.ndjson)
n_head=$(wc -l <"$HEAD_FILE")
n_tail=$(cat "${TAIL_FILES[@]}" | wc -l)
((n_head == SMALL && n_head + n_tail == SCALE_N)) ||
    die "corpus in $CORPUS has $n_head + $n_tail lines, not $SMALL + $((SCALE_N - SMALL)): delete it and rerun"
CORPUS_BYTES=$(cat "$HEAD_FILE" "${TAIL_FILES[@]}" | wc -c)
AVG_LINE=$((CORPUS_BYTES / SCALE_N))
say "  $SCALE_N articles, $(fmt_mb "$CORPUS_BYTES") of NDJSON, $AVG_LINE B per line on average; ${#TAIL_FILES[@]} file(s) after the first $SMALL"

make_site "$WORK/site"
make_site "$WORK/site-ttl1" 1
CONFIG=$WORK/site/site.toml

# ---------------------------------------------------------------- steps
n_of() { if [[ $1 == small ]]; then fmt_int "$SMALL"; else fmt_int "$SCALE_N"; fi; }
# import_phase BACKEND PHASE DB_URL FILES...: times one `bantin import` process.
import_phase() {
    local backend=$1 phase=$2 db=$3 log t0 secs line created rejected rss=0
    shift 3
    log=$OUT_DIR/import-$backend-$phase.log
    say "  [$backend] import $phase: $(fmt_int "$(cat "$@" | wc -l)") articles from $# file(s)..."
    t0=$(now)
    if [[ -n $TIME_BIN ]]; then
        (cd "$REPO" && BANTIN_DATABASE_URL=$db "$TIME_BIN" -f '%M' -o "$log.rss" "$BIN" --config "$CONFIG" import "$@") >"$log" 2>&1 ||
            { tail -n 20 "$log" >&2; die "bantin import failed (log: $log)"; }
        rss=$(tail -n 1 "$log.rss")
    else
        (cd "$REPO" && BANTIN_DATABASE_URL=$db "$BIN" --config "$CONFIG" import "$@") >"$log" 2>&1 ||
            { tail -n 20 "$log" >&2; die "bantin import failed (log: $log)"; }
    fi
    secs=$(elapsed "$t0")
    line=$(grep -E '[0-9]+ created, ' "$log" | tail -n 1 || true)
    [[ -n $line ]] || die "no summary line in $log"
    created=$(sed -E 's/^([0-9]+) created.*/\1/' <<<"$line")
    rejected=$(sed -E 's/.* ([0-9]+) rejected.*/\1/' <<<"$line")
    ((rejected == 0)) || die "bantin rejected $rejected articles in import $phase (log: $log)"
    say "    $line; wall $secs s, peak RSS $((rss / 1024)) MB"
    put "$backend" "import_${phase}_n" "$created"
    put "$backend" "import_${phase}_s" "$secs"
    put "$backend" "import_${phase}_rss_kb" "$rss"
    put "$backend" "import_${phase}_line" "$line"
}

row_counts() { # BACKEND DB_URL PATH -> "articles tag_rows", or "? ?"
    if [[ $1 == sqlite ]]; then
        if ((HAVE_SQLITE3)); then
            sqlite3 "$3" 'SELECT (SELECT count(*) FROM articles) || " " || (SELECT count(*) FROM article_tags)'
        else
            echo "? ?"
        fi
    else
        psql "$2" -X -At -c 'SELECT (SELECT count(*) FROM articles) || '"' '"' || (SELECT count(*) FROM article_tags)'
    fi
}

analyze() { # BACKEND DB_URL
    if [[ $1 == postgres && $PG_ANALYZE == 1 ]]; then
        local t0
        t0=$(now)
        psql "$2" -X -q -c 'ANALYZE' || die "ANALYZE failed"
        say "    ANALYZE in $(elapsed "$t0") s"
    fi
}

# miss_criterion BACKEND SIZE DB_URL: criterion medians, as key crit_SIZE_<bench> -> ms.
miss_criterion() {
    local backend=$1 size=$2 db=$3 log=$OUT_DIR/criterion-$1-$2.log parsed
    say "  [$backend] criterion \"$CRIT_GROUP\" at $(n_of "$size") articles (cargo bench, log $log)..."
    if ! (cd "$REPO" && BANTIN_BENCH_DATABASE_URL=$db timeout "$BENCH_TIMEOUT" \
        cargo bench --bench render -- "$CRIT_GROUP") >"$log" 2>&1; then
        say "    warning: cargo bench failed (see $log); no criterion figures for $backend at $(n_of "$size")"
        put "$backend" "crit_${size}_error" "cargo bench failed"
        return 0
    fi
    # Criterion prints "<id>  time: [low median high]", the id on the line before when it is long.
    parsed=$(python3 - "$log" "$CRIT_GROUP" <<'PY'
import re, sys
unit = {"ps": 1e-9, "ns": 1e-6, "µs": 1e-3, "us": 1e-3, "ms": 1.0, "s": 1e3}
group = sys.argv[2]
prev = ""
for line in open(sys.argv[1], encoding="utf-8", errors="replace"):
    line = line.rstrip("\n")
    m = re.search(r"time:\s+\[([^\]]+)\]", line)
    if not m:
        if line.strip() and not line.startswith(" "):
            prev = line.strip()
        continue
    ident = line[: m.start()].strip() or prev
    v = m.group(1).split()
    if len(v) == 6 and group in ident:
        name = ident.split("/", 1)[1] if "/" in ident else ident
        print(f"{name}\t{float(v[2]) * unit[v[3]]:.4f}")
PY
)
    if [[ -z $parsed ]]; then
        say "    warning: cargo bench reported no \"$CRIT_GROUP/...\" results (does benches/render.rs implement BANTIN_BENCH_DATABASE_URL?); see $log"
        put "$backend" "crit_${size}_error" "no results (not in benches/render.rs?)"
        return 0
    fi
    while IFS=$'\t' read -r id ms; do
        put "$backend" "crit_${size}_$id" "$ms"
        say "    $id: median $ms ms"
    done <<<"$parsed"
}

# miss_http BACKEND SIZE DB_URL: bantin serve with ttl = 1; every GET a miss.
miss_http() {
    local backend=$1 size=$2 db=$3 port pid out=$OUT_DIR/http-$1-$2.tsv
    port=$(free_port)
    say "  [$backend] HTTP misses at $(n_of "$size") articles: $HTTP_ROUNDS rounds of ${#PAGES[@]} pages, 1.25 s apart..."
    start_bantin "serve-$backend-$size" "$WORK/site-ttl1/site.toml" "$db" "$port"
    pid=$STARTED_PID
    python3 - "$port" "$HTTP_ROUNDS" "${PAGES[@]}" >"$out" <<'PY' || die "HTTP miss measurement failed"
import http.client, re, statistics, sys, time
port, rounds, paths = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

def get(path, headers={}):
    t0 = time.perf_counter()
    conn.request("GET", path, headers=headers)
    r = conn.getresponse()
    body = r.read()
    return r.status, body, time.perf_counter() - t0

def misses():
    status, body, _ = get("/metrics")
    m = re.search(rb"^\w*cache_misses(?:_total)?\s+([0-9.e+]+)", body, re.M)
    return float(m.group(1)) if m else None

times = {p: [] for p in paths}
sizes = {}
m0 = misses()
for r in range(rounds + 1):  # round 0 warms the connection and the store's pages
    start = time.monotonic()
    for p in paths:
        status, body, dt = get(p, {"Accept-Encoding": "gzip"})
        if status != 200:
            sys.exit(f"GET {p}: status {status}: {body[:300]!r}")
        sizes[p] = len(body)
        if r > 0:
            times[p].append(dt * 1000)
    time.sleep(max(0.0, start + 1.25 - time.monotonic()))
m1 = misses()
expected = (rounds + 1) * len(paths)
got = "?" if m0 is None or m1 is None else int(m1 - m0)
for p in paths:
    t = sorted(times[p])
    p90 = t[min(len(t) - 1, int(round(0.9 * (len(t) - 1))))]
    print(f"{p}\t{statistics.median(t):.3f}\t{p90:.3f}\t{t[0]:.3f}\t{sizes[p]}\t{got}\t{expected}")
PY
    stop_pid "$pid"
    local p med p90 mn bytes got expected i=0
    while IFS=$'\t' read -r p med p90 mn bytes _ _; do
        put "$backend" "http_${size}_$i" "$med $p90 $mn $bytes"
        say "    $p: median $med ms, p90 $p90 ms, min $mn ms ($bytes B gzip)"
        i=$((i + 1))
    done <"$out"
    read -r got expected < <(tail -n 1 "$out" | cut -f6,7)
    [[ $got == "$expected" ]] ||
        say "    warning: the server counted $got cache misses for $expected requests: some were hits"
    put "$backend" "http_${size}_misses" "$got/$expected"
}

measure() { # BACKEND SIZE DB_URL
    local m
    for m in $MISS; do
        case $m in
        criterion) miss_criterion "$1" "$2" "$3" ;;
        http) miss_http "$1" "$2" "$3" ;;
        esac
    done
}

# ---------------------------------------------------------------- per backend
T_START=$(now)
for backend in $BACKENDS; do
    say "backend $backend:"
    new_store "$backend" scale
    path=$STORE_PATH url=$STORE_URL
    import_phase "$backend" small "$url" "$HEAD_FILE"
    analyze "$backend" "$url"
    put "$backend" size_small "$(db_size "$backend" "$url" "$path")"
    measure "$backend" small "$url"
    import_phase "$backend" rest "$url" "${TAIL_FILES[@]}"
    analyze "$backend" "$url"
    put "$backend" size_big "$(db_size "$backend" "$url" "$path")"
    read -r n_art n_tags < <(row_counts "$backend" "$url" "$path")
    put "$backend" rows "$n_art"
    put "$backend" tag_rows "$n_tags"
    [[ $n_art == "?" || $n_art == "$SCALE_N" ]] || die "$backend holds $n_art articles, not $SCALE_N"
    say "    $backend: $n_art articles, $n_tags tag rows, $(fmt_mb "$(get "$backend" size_big)")"
    measure "$backend" big "$url"
    if [[ $backend == sqlite && $HAVE_SQLITE3 == 1 ]]; then
        # How full the pages are: WITHOUT ROWID rows of ~2 KB spill to overflow pages.
        sqlite3 "$path" "SELECT name, sum(pgsize), sum(unused) FROM dbstat GROUP BY name ORDER BY 2 DESC" \
            >"$OUT_DIR/sqlite-dbstat.txt" 2>/dev/null || true
        put sqlite dbstat "$(awk -F'|' '{t += $2; u += $3} $1 == "articles" {a = $2; au = $3}
            END {if (t) printf "%.0f %.0f %.0f %.0f", t, u, a, au}' "$OUT_DIR/sqlite-dbstat.txt")"
    fi
    if [[ $backend == postgres ]]; then
        put postgres relsizes "$(psql "$url" -X -At -F' ' -c "SELECT pg_total_relation_size('articles'), pg_total_relation_size('article_tags')")"
    fi
    drop_store "$backend" scale "$path"
done
TOTAL_S=$(elapsed "$T_START")

# ---------------------------------------------------------------- summary
SUMMARY=$OUT_DIR/summary.md
N_REST=$((SCALE_N - SMALL))
rate() { # N SECONDS -> "12.3 s (4,567/s)"
    if [[ -z $2 ]]; then echo "-"; return; fi
    echo "$(printf '%.1f' "$2") s ($(fmt_int "$(awk -v n="$1" -v s="$2" 'BEGIN {print (s > 0 ? n / s : 0)}')")/s)"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (a > 0 && b > 0) printf "%.2f", b / a; else print "-"}'; }
{
    echo "### bantin at scale: $(fmt_int "$SMALL") and $(fmt_int "$SCALE_N") articles"
    echo
    echo "- Machine: $(machine_line)"
    pg_note=
    if [[ " $BACKENDS " == *" postgres "* ]]; then
        pg_note="; PostgreSQL $(get postgres version) on $PG_ADMIN_URL, ANALYZE after each import: $([[ $PG_ANALYZE == 1 ]] && echo yes || echo no)"
    fi
    echo "- bantin $REV ($BIN)$pg_note"
    echo "- Corpus: \`bench/gen_corpus.py ${GEN_ARGS[*]}\`: $(fmt_int "$SCALE_N") articles, $AVG_LINE B per NDJSON line on average ($(fmt_mb "$CORPUS_BYTES")), vi + en, 7 categories, 300 tags, 40 bylines, ten years; the $(fmt_int "$SMALL") newest all vi / kinh-te, so the measured pages hold the same articles at both sizes"
    chunk_note=
    if ((IMPORT_CHUNK > 0)); then
        chunk_note=" of up to $(fmt_int "$IMPORT_CHUNK") lines (one process per file; bantin import streams each file in batches of 1,000)"
    fi
    echo "- Import: \`bantin import\`, one process per step: $(fmt_int "$SMALL") articles from one file, then $(fmt_int "$N_REST") from ${#TAIL_FILES[@]} file(s)$chunk_note; total run time of this script $(printf '%.0f' "$TOTAL_S") s"
    echo
    echo "| backend | import first $(fmt_int "$SMALL") | import next $(fmt_int "$N_REST") | import all $(fmt_int "$SCALE_N") | peak RSS of the import | DB size at $(fmt_int "$SMALL") | DB size at $(fmt_int "$SCALE_N") | bytes per article |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    for b in $BACKENDS; do
        s1=$(get "$b" import_small_s)
        s2=$(get "$b" import_rest_s)
        total=$(awk -v a="$s1" -v b="$s2" 'BEGIN {print a + b}')
        big=$(get "$b" size_big)
        rss=$(awk -v a="$(get "$b" import_small_rss_kb)" -v b="$(get "$b" import_rest_rss_kb)" 'BEGIN {m = (a > b ? a : b); print (m > 0 ? sprintf("%.0f MB", m / 1024) : "-")}')
        echo "| $b | $(rate "$SMALL" "$s1") | $(rate "$N_REST" "$s2") | **$(rate "$SCALE_N" "$total")** | $rss | $(fmt_mb "$(get "$b" size_small)") | **$(fmt_mb "$big")** | $(fmt_int $((big / SCALE_N))) |"
    done
    echo
    echo "Uncached feed page (query + render + gzip + brotli; the same 50 articles at both sizes):"
    echo
    echo "| backend | page | method | at $(fmt_int "$SMALL") | at $(fmt_int "$SCALE_N") | ratio |"
    echo "| --- | --- | --- | ---: | ---: | ---: |"
    for b in $BACKENDS; do
        if [[ " $MISS " == *" criterion "* ]]; then
            ids=$(awk -F'\t' -v b="$b" '$1 == b && $2 ~ /^crit_(small|big)_/ && $2 !~ /_error$/ {sub(/^crit_(small|big)_/, "", $2); print $2}' "$RESULTS" | awk '!seen[$0]++')
            if [[ -z $ids ]]; then
                echo "| $b | (all) | criterion median | $(get "$b" crit_small_error) | $(get "$b" crit_big_error) | - |"
            fi
            while IFS= read -r id; do
                [[ -n $id ]] || continue
                a=$(get "$b" "crit_small_$id")
                c=$(get "$b" "crit_big_$id")
                echo "| $b | $id | criterion median | ${a:--} ms | ${c:--} ms | $(ratio "$a" "$c") |"
            done <<<"$ids"
        fi
        if [[ " $MISS " == *" http "* ]]; then
            for i in "${!PAGES[@]}"; do
                read -r a_med a_p90 _ a_bytes <<<"$(get "$b" "http_small_$i")"
                read -r c_med c_p90 _ c_bytes <<<"$(get "$b" "http_big_$i")"
                echo "| $b | \`${PAGES[$i]}\` ($(fmt_int "${c_bytes:-0}") B gzip) | HTTP miss, median (p90) | $a_med ms ($a_p90) | $c_med ms ($c_p90) | **$(ratio "$a_med" "$c_med")** |"
            done
        fi
    done
    echo
    if [[ " $MISS " == *" http "* ]]; then
        echo "HTTP: \`bantin serve\` with \`[cache] ttl = 1\`, $HTTP_ROUNDS rounds of GET with Accept-Encoding: gzip over one keep-alive connection, 1.25 s apart; cache misses counted by the server: $(for b in $BACKENDS; do printf '%s %s at %s, %s at %s; ' "$b" "$(get "$b" http_small_misses)" "$(fmt_int "$SMALL")" "$(get "$b" http_big_misses)" "$(fmt_int "$SCALE_N")"; done | sed 's/; $//') (misses/requests)."
        echo
    fi
    for b in $BACKENDS; do
        echo "- $b import output: $(get "$b" import_small_line) / $(get "$b" import_rest_line); $(get "$b" rows) articles and $(get "$b" tag_rows) tag rows stored"
    done
    if [[ -n $(get sqlite dbstat) ]]; then
        read -r t u a au <<<"$(get sqlite dbstat)"
        awk -v t="$t" -v u="$u" -v a="$a" -v au="$au" 'BEGIN {printf "- SQLite pages (dbstat): %.0f MB in b-trees, %.0f%% unused; the articles table %.0f MB, %.0f%% of it unused\n", t / 1048576, 100 * u / t, a / 1048576, 100 * au / a}'
    fi
    if [[ -n $(get postgres relsizes) ]]; then
        read -r pa pt <<<"$(get postgres relsizes)"
        echo "- PostgreSQL: articles $(fmt_mb "$pa") with indexes and TOAST, article_tags $(fmt_mb "$pt")"
    fi
} >"$SUMMARY"

echo
echo "Results: $RESULTS; logs: $OUT_DIR"
echo
cat "$SUMMARY"
