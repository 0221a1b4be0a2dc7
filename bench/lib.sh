# bench/lib.sh: helpers shared by bench/scale.sh and bench/api_throughput.sh (sourced, not run).
#
# The sourcing script sets PROG (its name, for messages) and then calls bench_init, which sets
# BENCH_DIR, REPO, OUT_DIR and WORK and installs the cleanup trap: every server started with
# start_bantin and every database made with pg_create is stopped / dropped on exit, whatever the
# exit path (KEEP=1 keeps the databases and the work dir for a look afterwards).

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
    for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
    PIDS=()
    if [[ ${KEEP:-0} != 1 ]]; then
        for db in "${PG_DBS[@]}"; do pg_drop "$db"; done
        PG_DBS=()
    elif ((${#PG_DBS[@]})); then
        say "KEEP=1: kept PostgreSQL database(s) ${PG_DBS[*]} and $OUT_DIR"
    fi
}

bench_init() {
    BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
    REPO=$(cd "$BENCH_DIR/.." && pwd)
    OUT_DIR=${OUT_DIR:-$(mktemp -d "/tmp/bantin-$PROG.XXXXXX")}
    mkdir -p "$OUT_DIR"
    OUT_DIR=$(cd "$OUT_DIR" && pwd)
    WORK=$OUT_DIR/work
    rm -rf "$WORK"
    mkdir -p "$WORK"
    trap bench_cleanup EXIT
    trap 'say "$PROG: failed at line $LINENO: $BASH_COMMAND"' ERR
    trap 'say "$PROG: interrupted"; exit 130' INT TERM
}

need() { # CMD...: dies naming the first missing command
    local cmd
    for cmd in "$@"; do
        command -v "$cmd" >/dev/null 2>&1 || die "$cmd not found (Debian: apt-get install $cmd)"
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

# make_site DIR [TTL [MAX_BATCH_BYTES]]: DIR/site.toml = feeds/site.toml with articles_dir an empty
# DIR/articles (nothing synced at start), optionally [cache] ttl and [api] max_batch_bytes set.
make_site() {
    local dir=$1 ttl=${2:-} batch=${3:-}
    mkdir -p "$dir/articles"
    sed -e '/^[[:space:]]*articles_dir[[:space:]]*=/d' "$REPO/feeds/site.toml" >"$dir/rest.toml"
    if [[ -n $ttl ]]; then
        grep -q '^ttl[[:space:]]*=' "$dir/rest.toml" || die "feeds/site.toml has no [cache] ttl line to override"
        sed -i -e "s/^ttl[[:space:]]*=.*/ttl = $ttl/" "$dir/rest.toml"
    fi
    {
        echo "# feeds/site.toml as copied by bench/$PROG.sh"
        echo 'articles_dir = "articles"'
        cat "$dir/rest.toml"
        if [[ -n $batch ]]; then
            printf '\n[api]\nmax_batch_bytes = %s\n' "$batch"
        fi
    } >"$dir/site.toml"
    rm "$dir/rest.toml"
}

# start_bantin NAME CONFIG DB_URL PORT [VAR=VALUE...]: bantin serve in the background, its log in
# OUT_DIR/NAME.log; waits for /healthz; sets STARTED_PID.
start_bantin() {
    local name=$1 cfg=$2 db=$3 port=$4 log=$OUT_DIR/$1.log i
    shift 4
    (cd "$REPO" && exec env RUST_LOG="${BENCH_RUST_LOG:-bantin=info,warn}" BANTIN_LISTEN="127.0.0.1:$port" \
        BANTIN_DATABASE_URL="$db" "$@" "$BIN" --config "$cfg" serve) >"$log" 2>&1 &
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
pg_create() { # NAME -> prints the database URL
    local name=$1
    pg_psql -c "DROP DATABASE IF EXISTS $name WITH (FORCE)" >/dev/null
    pg_psql -c "CREATE DATABASE $name" >/dev/null || die "cannot create database $name on $PG_ADMIN_URL"
    PG_DBS+=("$name")
    echo "$PG_ADMIN_URL/$name"
}
pg_drop() { pg_psql -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" >/dev/null 2>&1 || say "warning: could not drop database $1"; }

# Generated corpora are cached in CACHE_DIR under a key of the generator's source and arguments.
CACHE_DIR=${CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/bantin-bench}
corpus_key() { # ARGS... -> a short key of gen_corpus.py's bytes and the arguments
    { cat "$BENCH_DIR/gen_corpus.py"; printf '%s\n' "$@"; } | sha256sum | cut -c1-16
}

machine_line() {
    local cpu mem
    cpu=$(awk -F': *' '/^model name/ {print $2; exit}' /proc/cpuinfo)
    mem=$(awk '/^MemTotal:/ {printf "%.0f GB", $2 / 1048576}' /proc/meminfo)
    echo "$(nproc) cores ($cpu), $mem RAM, $(uname -sr); load average $(cut -d' ' -f1-3 /proc/loadavg)"
}

fmt_int() { [[ $1 =~ ^[0-9.e+-]+$ ]] || { echo "$1"; return; }; LC_ALL=C awk -v n="$1" 'BEGIN {s = sprintf("%.0f", n); o = ""; while (length(s) > 3) {o = "," substr(s, length(s) - 2) o; s = substr(s, 1, length(s) - 3)}; print s o}'; }
fmt_mb() { awk -v b="$1" 'BEGIN {printf "%.0f MB", b / 1048576}'; }
