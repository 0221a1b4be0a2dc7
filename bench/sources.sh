#!/usr/bin/env bash
# bench/sources.sh: bantin aggregating 1,000 upstream feeds of 30 items each, all served by one
# local nginx (static files, with ETag and Last-Modified, so conditional requests get 304s).
#
# What it measures (issue 10's goals on 2 cores: first cycle <= 10 s, 304 cycle <= 2 s, RSS <=
# 150 MB):
#   1. first cycle: from `bantin serve` until every source has been polled once and its 30
#      items stored (30,000 articles written through the ingest path, feeds invalidated);
#   2. a steady all-304 cycle: bantin is stopped, every source is made due at once in its store
#      (`UPDATE sources SET next_poll = 0`: the worst case, a whole cycle in one burst), bantin is
#      started again and polls all of them conditionally; from start until every source's
#      not-modified poll is counted in /metrics;
#   3. bantin's CPU seconds (user + system, /proc/PID/stat) and peak resident memory (VmHWM)
#      in each phase.
# Sources are configured with every = "1h" so nothing but these two cycles runs.
#
# How to run: bench/sources.sh (builds target/release/bantin if missing; BUILD=1 rebuilds).
# Knobs: SOURCES=1000 ITEMS=30 ROUNDS=3 (the cycles are repeated ROUNDS times on fresh stores;
# medians reported). Needs nginx, curl and python3 (Debian: nginx-light curl python3).
set -euo pipefail
PROG=sources
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
bench_init
need -p "nginx-light curl python3" nginx curl python3
find_bin

N=${SOURCES:-1000}
ITEMS=${ITEMS:-30}
ROUNDS=${ROUNDS:-3}
TOKEN=bench-token-0123456789

# Upstream: N RSS files of ITEMS items each (distinct guids, ~400 B of summary per item).
DOCROOT=$WORK/upstream/html
mkdir -p "$DOCROOT/feeds" "$WORK/upstream/tmp"
python3 - "$DOCROOT/feeds" "$N" "$ITEMS" <<'EOF'
import sys
out, n, items = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
words = "tỉnh huyện xã nông dân lúa giá chợ cầu đường trường học bệnh viện mưa lũ".split()
for i in range(n):
    parts = ['<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
             f'<title>Báo chị em {i}</title><link>https://sister{i}.example/</link><description>Tin</description>']
    for j in range(items):
        text = " ".join(words[(i + j + k) % len(words)] for k in range(60))
        parts.append(f'<item><guid>s{i}-{j}</guid><title>Tin {j} của báo {i}</title>'
                     f'<link>https://sister{i}.example/tin/{j}.html</link>'
                     f'<description>{text}</description><category>tag{j % 7}</category>'
                     f'<pubDate>Fri, 09 Jan 2026 {j % 24:02d}:{i % 60:02d}:00 +0700</pubDate></item>')
    parts.append('</channel></rss>')
    open(f"{out}/s{i}.xml", "w").write("".join(parts))
EOF

NGINX_PORT=$(free_port)
cat >"$WORK/upstream/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $WORK/upstream/nginx.pid;
error_log $WORK/upstream/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $WORK/upstream/tmp/body;
    proxy_temp_path $WORK/upstream/tmp/proxy;
    fastcgi_temp_path $WORK/upstream/tmp/fastcgi;
    uwsgi_temp_path $WORK/upstream/tmp/uwsgi;
    scgi_temp_path $WORK/upstream/tmp/scgi;
    sendfile on;
    keepalive_requests 100000;
    types { application/rss+xml xml; }
    etag on;
    server { listen 127.0.0.1:$NGINX_PORT; root $DOCROOT; location / { } }
}
EOF
if [[ $(id -u) == 0 ]]; then sed -i "1i user root;" "$WORK/upstream/nginx.conf"; fi
nginx -p "$WORK/upstream" -e "$WORK/upstream/error.log" -c "$WORK/upstream/nginx.conf" >"$WORK/upstream/stdout.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do curl -fsS -o /dev/null "http://127.0.0.1:$NGINX_PORT/feeds/s0.xml" 2>/dev/null && break; sleep 0.1; done
curl -fsS -o /dev/null "http://127.0.0.1:$NGINX_PORT/feeds/s0.xml" || die "nginx does not serve the upstream files"

# The site: feeds/site.toml with N sources.
make_site "$WORK/site"
{
    for ((i = 0; i < N; i++)); do
        printf '\n[[sources]]\nid = "s%d"\nurl = "http://127.0.0.1:%d/feeds/s%d.xml"\nlang = "vi"\ncategory = "xa-hoi"\nevery = "1h"\n' "$i" "$NGINX_PORT" "$i"
    done
} >>"$WORK/site/site.toml"

cpu_of() { # PID -> user+system seconds
    awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat"
}
hwm_of() { awk '/VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }

# wait_until PORT WHAT: polls bantin until WHAT holds ("ok": every source ok; "nm": N
# not-modified polls counted); prints nothing, dies after 300 s.
wait_until() {
    python3 - "$1" "$2" "$N" "$TOKEN" <<'EOF'
import json, sys, time, urllib.request
port, what, n, token = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
deadline = time.time() + 300
while time.time() < deadline:
    try:
        if what == "ok":
            req = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/sources",
                                         headers={"Authorization": f"Bearer {token}"})
            v = json.load(urllib.request.urlopen(req, timeout=5))
            if sum(1 for s in v["sources"] if s["state"] == "ok") == n:
                sys.exit(0)
        else:
            text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
            got = sum(float(l.rsplit(" ", 1)[1]) for l in text.splitlines()
                      if l.startswith("bantin_source_polls_total{") and 'outcome="not_modified"' in l)
            if got >= n:
                sys.exit(0)
    except Exception:
        pass
    time.sleep(0.05)
sys.exit("timed out")
EOF
}

results_init
for ((r = 1; r <= ROUNDS; r++)); do
    DB=$WORK/round$r.db
    PORT=$(free_port)
    T=$(now)
    start_bantin "round$r-first" "$WORK/site/site.toml" "sqlite://$DB" "$PORT" BANTIN_API_TOKEN=$TOKEN
    PID=$STARTED_PID
    wait_until "$PORT" ok || die "round $r: the first cycle did not finish"
    FIRST=$(elapsed "$T")
    FIRST_CPU=$(cpu_of "$PID")
    FIRST_RSS=$(hwm_of "$PID")
    ARTICLES=$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select count(*) from articles').fetchone()[0])" "$DB")
    stop_pid "$PID"
    python3 -c "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('update sources set next_poll = 0'); c.commit()" "$DB"
    T=$(now)
    start_bantin "round$r-304" "$WORK/site/site.toml" "sqlite://$DB" "$PORT" BANTIN_API_TOKEN=$TOKEN
    PID=$STARTED_PID
    wait_until "$PORT" nm || die "round $r: the 304 cycle did not finish"
    NM=$(elapsed "$T")
    NM_CPU=$(cpu_of "$PID")
    NM_RSS=$(hwm_of "$PID")
    stop_pid "$PID"
    say "round $r: first cycle ${FIRST}s (cpu ${FIRST_CPU}s, peak ${FIRST_RSS} MB, $ARTICLES articles); 304 cycle ${NM}s (cpu ${NM_CPU}s, peak ${NM_RSS} MB)"
    put "$r" first "$FIRST"; put "$r" first_cpu "$FIRST_CPU"; put "$r" first_rss "$FIRST_RSS"
    put "$r" nm "$NM"; put "$r" nm_cpu "$NM_CPU"; put "$r" nm_rss "$NM_RSS"
    put "$r" articles "$ARTICLES"
done

median() { # KEY
    local k=$1 r vals=()
    for ((r = 1; r <= ROUNDS; r++)); do vals+=("$(get "$r" "$k")"); done
    printf '%s\n' "${vals[@]}" | sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'
}
cat <<EOF

bantin $REV, $N sources x $ITEMS items, one local nginx upstream, $ROUNDS rounds (medians)
| cycle | time | goal | bantin CPU | peak RSS | goal |
| --- | ---: | ---: | ---: | ---: | ---: |
| first (all 200, $(median articles) articles stored) | $(median first) s | <= 10 s | $(median first_cpu) s | $(median first_rss) MB | <= 150 MB |
| steady (all 304, all due at once) | $(median nm) s | <= 2 s | $(median nm_cpu) s | $(median nm_rss) MB | <= 150 MB |
EOF
