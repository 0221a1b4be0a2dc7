# bench/lib.sh: helpers shared by bench/loadtest.sh, bench/scale.sh and bench/api_throughput.sh
# (sourced, not run).
# shellcheck shell=bash
#
# The sourcing script sets PROG (its name, for messages) and then calls bench_init, which sets
# BENCH_DIR, REPO, OUT_DIR and WORK and installs the cleanup trap: every process in PIDS (each
# server started with start_bantin) is stopped and every database made with pg_create is dropped
# on exit, whatever the exit path (KEEP=1 keeps the databases and the work dir for a look
# afterwards). A script that defines before_cleanup has it run first, by every bench_cleanup.

say() { printf '%s\n' "$*" >&2; }
die() { printf '%s: error: %s\n' "${PROG:-bench}" "$*" >&2; exit 1; }

PIDS=()
PG_DBS=()

stop_pid() { # PID: TERM, then KILL after 10 s
    local pid=$1 i
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

bench_cleanup() {
    local pid db
    if declare -F before_cleanup >/dev/null; then before_cleanup; fi
    for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
    PIDS=()
    if [[ ${KEEP:-0} != 1 ]]; then
        for db in "${PG_DBS[@]}"; do pg_drop "$db"; done
        PG_DBS=()
    elif ((${#PG_DBS[@]})); then
        say "KEEP=1: kept PostgreSQL database(s) ${PG_DBS[*]} and $OUT_DIR"
    fi
}

# shellcheck disable=SC2120 # NAME is optional
bench_init() { # [NAME]: OUT_DIR defaults to a new /tmp/bantin-NAME.XXXXXX (NAME: $PROG)
    BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
    REPO=$(cd "$BENCH_DIR/.." && pwd)
    OUT_DIR=${OUT_DIR:-$(mktemp -d "/tmp/bantin-${1:-$PROG}.XXXXXX")}
    mkdir -p "$OUT_DIR"
    OUT_DIR=$(cd "$OUT_DIR" && pwd)
    WORK=$OUT_DIR/work
    rm -rf "$WORK"
    mkdir -p "$WORK"
    trap bench_cleanup EXIT
    trap 'say "$PROG: failed at line $LINENO: $BASH_COMMAND"' ERR
    trap 'say "$PROG: interrupted"; exit 130' INT TERM
}

need() { # [-p PACKAGES] CMD...: dies naming the first missing command and what to install
    local cmd pkgs=
    if [[ ${1:-} == -p ]]; then
        pkgs=$2
        shift 2
    fi
    for cmd in "$@"; do
        command -v "$cmd" >/dev/null 2>&1 || die "$cmd not found (Debian: apt-get install ${pkgs:-$cmd})"
    done
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.3f", b - a}'; }

# BIN: $BANTIN_BIN, or target/release/bantin (built when missing, or always with BUILD=1).
find_bin() {
    if [[ -n ${BANTIN_BIN:-} ]]; then
        BIN=$BANTIN_BIN
        [[ -x $BIN ]] || die "BANTIN_BIN=$BIN is not an executable"
    else
        BIN=$REPO/target/release/bantin
        if [[ ${BUILD:-0} == 1 || ! -x $BIN ]]; then
            say "building bantin (cargo build --release, up to ${BUILD_TIMEOUT:-1800}s)..."
            (cd "$REPO" && timeout "${BUILD_TIMEOUT:-1800}" cargo build --release) || die "cargo build --release failed"
        fi
    fi
    BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
    REV=$(git -C "$REPO" describe --always --dirty 2>/dev/null || echo unknown)
}

# make_site DIR [TTL [MAX_BATCH_BYTES [ITEMS_PER_FEED]]]: DIR/site.toml = feeds/site.toml with
# articles_dir an empty DIR/articles (nothing synced at start), optionally [cache] ttl,
# [api] max_batch_bytes and items_per_feed set (an empty argument leaves that setting as it is).
make_site() {
    local dir=$1 ttl=${2:-} batch=${3:-} items=${4:-}
    local drop=(-e '/^[[:space:]]*articles_dir[[:space:]]*=/d')
    if [[ -n $items ]]; then drop+=(-e '/^[[:space:]]*items_per_feed[[:space:]]*=/d'); fi
    mkdir -p "$dir/articles"
    sed "${drop[@]}" "$REPO/feeds/site.toml" >"$dir/rest.toml"
    if [[ -n $ttl ]]; then
        grep -q '^ttl[[:space:]]*=' "$dir/rest.toml" || die "feeds/site.toml has no [cache] ttl line to override"
        sed -i -e "s/^ttl[[:space:]]*=.*/ttl = $ttl/" "$dir/rest.toml"
    fi
    {
        echo "# feeds/site.toml as copied by bench/$PROG.sh"
        echo 'articles_dir = "articles"'
        if [[ -n $items ]]; then echo "items_per_feed = $items"; fi
        cat "$dir/rest.toml"
        if [[ -n $batch ]]; then
            printf '\n[api]\nmax_batch_bytes = %s\n' "$batch"
        fi
    } >"$dir/site.toml"
    rm "$dir/rest.toml"
}

# start_bantin NAME CONFIG DB_URL PORT [VAR=VALUE...]: bantin serve in the background, its log in
# OUT_DIR/NAME.log, with RUST_LOG=$BENCH_RUST_LOG (default bantin=info,warn; SERVE_RUST_LOG=0, set by
# the sourcing script, leaves RUST_LOG as it is); waits for /healthz; sets STARTED_PID.
SERVE_RUST_LOG=1
start_bantin() {
    local name=$1 cfg=$2 db=$3 port=$4 log=$OUT_DIR/$1.log i
    local vars=(BANTIN_LISTEN="127.0.0.1:$port" BANTIN_DATABASE_URL="$db")
    shift 4
    if [[ $SERVE_RUST_LOG == 1 ]]; then vars=(RUST_LOG="${BENCH_RUST_LOG:-bantin=info,warn}" "${vars[@]}"); fi
    (cd "$REPO" && exec env "${vars[@]}" "$@" "$BIN" --config "$cfg" serve) >"$log" 2>&1 &
    STARTED_PID=$!
    PIDS+=("$STARTED_PID")
    for ((i = 0; i < 600; i++)); do
        if curl -fsS --max-time 2 -o /dev/null "http://127.0.0.1:$port/healthz" 2>/dev/null; then
            return 0
        fi
        kill -0 "$STARTED_PID" 2>/dev/null || { tail -n 20 "$log" >&2; die "$name exited at start (log: $log)"; }
        sleep 0.2
    done
    tail -n 20 "$log" >&2
    die "$name did not answer /healthz within 120 s (log: $log)"
}

# PostgreSQL: PG_ADMIN_URL names the server (trust auth); databases are made and dropped here.
PG_ADMIN_URL=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432}
pg_psql() { PGOPTIONS='-c client_min_messages=warning' psql "$PG_ADMIN_URL/${PGDB:-postgres}" -X -q -v ON_ERROR_STOP=1 -At "$@"; }
pg_create() { # NAME: sets PG_URL to the new database's URL (not a subshell, so the exit trap
    # that drops PG_DBS sees it)
    local name=$1
    pg_psql -c "DROP DATABASE IF EXISTS $name WITH (FORCE)" >/dev/null
    pg_psql -c "CREATE DATABASE $name" >/dev/null || die "cannot create database $name on $PG_ADMIN_URL"
    PG_DBS+=("$name")
    PG_URL="$PG_ADMIN_URL/$name"
}
pg_drop() { pg_psql -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" >/dev/null 2>&1 || say "warning: could not drop database $1"; }

# Per-backend stores (BACKEND: sqlite or postgres), for scale.sh and api_throughput.sh.
# new_store BACKEND NAME: a fresh store; sets STORE_PATH (SQLite: WORK/NAME.db; else empty) and
# STORE_URL (PostgreSQL: a new database bantin_NAME_<pid>, its server version put as BACKEND version).
new_store() {
    STORE_PATH=
    if [[ $1 == sqlite ]]; then
        STORE_PATH=$WORK/$2.db
        rm -f "$STORE_PATH" "$STORE_PATH-wal" "$STORE_PATH-shm"
        STORE_URL=sqlite://$STORE_PATH
    else
        pg_create "bantin_$2_$$"
        STORE_URL=$PG_URL
        put "$1" version "$(psql "$STORE_URL" -X -At -c 'SHOW server_version')"
    fi
}
drop_store() { # BACKEND NAME PATH: the store of new_store BACKEND NAME gone, unless KEEP=1
    [[ ${KEEP:-0} != 1 ]] || return 0
    if [[ $1 == postgres ]]; then
        pg_drop "bantin_$2_$$"
        PG_DBS=()
    else
        rm -f "$3" "$3-wal" "$3-shm"
    fi
}
db_size() { # BACKEND DB_URL PATH -> bytes
    if [[ $1 == sqlite ]]; then
        local f total=0
        for f in "$3" "$3-wal" "$3-shm"; do
            [[ -f $f ]] && total=$((total + $(stat -c %s "$f")))
        done
        echo "$total"
    else
        psql "$2" -X -At -c 'SELECT pg_database_size(current_database())'
    fi
}

# results_init: RESULTS (OUT_DIR/results.tsv) of backend, key and value rows, written by put and
# read by get.
results_init() {
    RESULTS=$OUT_DIR/results.tsv
    printf 'backend\tkey\tvalue\n' >"$RESULTS"
}
put() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$RESULTS"; }
get() { awk -F'\t' -v b="$1" -v k="$2" '$1 == b && $2 == k {v = $3} END {print v}' "$RESULTS"; }

# Generated corpora are cached in CACHE_DIR under a key of the generator's source and arguments.
CACHE_DIR=${CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/bantin-bench}
corpus_key() { # ARGS... -> a short key of gen_corpus.py's bytes and the arguments
    { cat "$BENCH_DIR/gen_corpus.py"; printf '%s\n' "$@"; } | sha256sum | cut -c1-16
}
# cache_corpus DIR WHAT AWK_ARGS...: unless DIR/complete exists, `gen_corpus.py "${GEN_ARGS[@]}"`
# piped into `awk -v d=<temporary dir> AWK_ARGS...`, which writes the files, fills DIR; WHAT says
# what is generated ("N articles into DIR...").
cache_corpus() {
    local dir=$1 what=$2 t0
    shift 2
    if [[ -f $dir/complete ]]; then
        say "corpus: cached in $dir"
        return 0
    fi
    say "corpus: generating $what..."
    rm -rf "$dir" "$dir.tmp"
    mkdir -p "$dir.tmp"
    t0=$(now)
    python3 "$BENCH_DIR/gen_corpus.py" "${GEN_ARGS[@]}" | awk -v d="$dir.tmp" "$@"
    say "  generated in $(elapsed "$t0") s"
    touch "$dir.tmp/complete"
    mv "$dir.tmp" "$dir"
}

# parse_wrk FILE [requests]: a wrk --latency report as one line, "rps p50_ms p99_ms bytes_per_req
# non2xx3xx socket_errors" (rps to 2 decimals), or with `requests` "rps p50_ms p99_ms requests
# non2xx3xx socket_errors" (rps to 1 decimal); ERR when the report has no Requests/sec line.
parse_wrk() {
    awk -v want="${2:-bytes_per_req}" '
    function ms(s,  n, u) { n = s + 0; u = s; sub(/^[0-9.]+/, "", u)
        if (u == "us") return n / 1000; if (u == "s") return n * 1000
        if (u == "m") return n * 60000; if (u == "h") return n * 3600000; return n }
    function bytes(s,  n, u) { n = s + 0; u = s; sub(/^[0-9.]+/, "", u)
        if (u == "KB") return n * 1024; if (u == "MB") return n * 1048576
        if (u == "GB") return n * 1073741824; if (u == "TB") return n * 1099511627776; return n }
    /^Requests\/sec:/ { rps = $2 }
    /^Transfer\/sec:/ { tps = bytes($2) }
    / requests in / { reqs = $1 }
    /Latency Distribution/ { dist = 1; next }
    dist && $1 == "50%" { p50 = ms($2) }
    dist && $1 == "99%" { p99 = ms($2); dist = 0 }
    /Non-2xx or 3xx responses:/ { non = $NF }
    /Socket errors:/ { gsub(/,/, ""); serr = $4 + $6 + $8 + $10 }
    END { if (rps == "") { print "ERR"; exit }
          if (want == "requests") printf "%.1f %.3f %.3f %d %d %d\n", rps, p50, p99, reqs, non, serr
          else printf "%.2f %.3f %.3f %.0f %d %d\n", rps, p50, p99, (rps > 0 ? tps / rps : 0), non, serr }' "$1"
}

cpu_model() { awk -F': *' '/^model name/ {print $2; exit}' /proc/cpuinfo; }
machine_line() {
    local cpu mem
    cpu=$(cpu_model)
    mem=$(awk '/^MemTotal:/ {printf "%.0f GB", $2 / 1048576}' /proc/meminfo)
    echo "$(nproc) cores ($cpu), $mem RAM, $(uname -sr); load average $(cut -d' ' -f1-3 /proc/loadavg)"
}

fmt_int() { [[ $1 =~ ^[0-9.e+-]+$ ]] || { echo "$1"; return; }; LC_ALL=C awk -v n="$1" 'BEGIN {s = sprintf("%.0f", n); o = ""; while (length(s) > 3) {o = "," substr(s, length(s) - 2) o; s = substr(s, 1, length(s) - 3)}; print s o}'; }
fmt_mb() { awk -v b="$1" 'BEGIN {printf "%.0f MB", b / 1048576}'; }
