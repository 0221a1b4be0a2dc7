#!/usr/bin/env bash
# bench/websub.sh: bantin's built-in WebSub hub pushing one write to 1,000 subscribers, all on
# one local subscriber server.
#
# What it measures (issue 17's goals on 2 cores: p99 <= 1 s for 1,000 subscribers, the write's
# own latency unchanged, RSS <= 150 MB):
#   1. the write's latency (PUT /api/v1/articles/{id}, 20 writes) with no subscription at all,
#      as the baseline;
#   2. 1,000 subscriptions made through POST /websub (each verified by a GET to the subscriber),
#      spread over four topics the bench article touches (/vi/ in RSS, Atom and JSON Feed, and
#      /vi/kinh-te/ in RSS), with secrets on half of them (signed deliveries);
#   3. ROUNDS times: an English article written (it touches no subscribed feed: the write's
#      latency with no subscriber, after the same idle gap as the next one), then one article
#      the subscriptions cover; the time from its answer to each of the 1,000 deliveries
#      arriving (p50, p99, max), both writes' own latency, and bantin's CPU seconds
#      (user + system, /proc/PID/stat) over the round;
#   4. bantin's peak resident memory (VmHWM) over the whole run.
# The subscriber is a threaded Python HTTP/1.1 server answering 204, so part of what is measured
# is Python's; it records each delivery's arrival on the same clock the writer reads.
#
# How to run: bench/websub.sh (builds target/release/bantin if missing; BUILD=1 rebuilds).
# Knobs: SUBSCRIBERS=1000 ROUNDS=5. Needs curl and python3.
set -euo pipefail
PROG=websub
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
bench_init
need -p "curl python3" curl python3
find_bin

N=${SUBSCRIBERS:-1000}
ROUNDS=${ROUNDS:-5}
TOKEN=bench-token-0123456789

make_site "$WORK/site"
# Callbacks are on 127.0.0.1, and 1,000 verifications go to one host within seconds.
sed -i -e 's/^allow_private_callbacks = .*/allow_private_callbacks = true/' \
    -e 's/^verifications_per_minute = .*/verifications_per_minute = 1000000/' "$WORK/site/site.toml"
grep -q '^allow_private_callbacks = true' "$WORK/site/site.toml" || die "feeds/site.toml has no [websub] allow_private_callbacks line to override"

SUB_PORT=$(free_port)
python3 - "$SUB_PORT" >"$OUT_DIR/subscriber.log" 2>&1 <<'EOF' &
import json, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit, parse_qs

lock = threading.Lock()
verified, arrivals, signed = 0, [], 0

class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def reply(self, code, body=b"", ctype="text/plain"):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        global verified, arrivals, signed
        u = urlsplit(self.path)
        if u.path == "/_stats":
            with lock:
                body = json.dumps({"verified": verified, "arrivals": arrivals, "signed": signed}).encode()
            return self.reply(200, body, "application/json")
        if u.path == "/_reset":
            with lock:
                arrivals, signed = [], 0
            return self.reply(204)
        q = parse_qs(u.query)
        with lock:
            verified += 1
        self.reply(200, q.get("hub.challenge", [""])[0].encode())
    def do_POST(self):
        global signed
        n = int(self.headers.get("Content-Length", "0"))
        self.rfile.read(n)
        t = time.time()
        with lock:
            arrivals.append(t)
            if self.headers.get("X-Hub-Signature", "").startswith("sha256="):
                signed += 1
        self.reply(204)

ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer.request_queue_size = 1024
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
EOF
PIDS+=($!)
for _ in $(seq 50); do curl -fsS -o /dev/null "http://127.0.0.1:$SUB_PORT/_stats" 2>/dev/null && break; sleep 0.1; done
curl -fsS -o /dev/null "http://127.0.0.1:$SUB_PORT/_stats" || die "the subscriber server did not start"

PORT=$(free_port)
start_bantin bantin "$WORK/site/site.toml" "sqlite://$WORK/bench.db" "$PORT" BANTIN_API_TOKEN=$TOKEN
PID=$STARTED_PID

cpu_of() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat"; }
hwm_of() { awk '/VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }
rss_of() { awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }

python3 - "$PORT" "$SUB_PORT" "$N" "$ROUNDS" "$TOKEN" "$PID" "$OUT_DIR/rounds.tsv" <<'EOF'
import json, statistics, sys, time, urllib.error, urllib.request, urllib.parse
port, sub_port, n, rounds, token, pid, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6], sys.argv[7]
base = f"http://127.0.0.1:{port}"
hz = 100

def cpu():
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / hz

def put(i, category="kinh-te", lang="vi"):
    art = {"id": f"bench-{i}", "lang": lang, "category": category, "title": f"Bài đo {i}",
           "summary": "Tóm tắt bài đo.", "content_html": "<p>" + "Nội dung bài đo. " * 200 + "</p>",
           "url": f"https://baolongan.example/vi/kinh-te/bench-{i}", "author": "Phóng viên",
           "published_at": "2026-11-25T08:00:00", "status": "published"}
    req = urllib.request.Request(f"{base}/api/v1/articles/bench-{i}", data=json.dumps(art).encode(),
                                 method="PUT", headers={"Authorization": f"Bearer {token}",
                                                        "Content-Type": "application/json"})
    t0 = time.time()
    with urllib.request.urlopen(req, timeout=30) as r:
        r.read()
        assert r.status in (200, 201), r.status
    t1 = time.time()
    return t1, (t1 - t0) * 1000

def stats():
    return json.load(urllib.request.urlopen(f"http://127.0.0.1:{sub_port}/_stats", timeout=30))

def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]

# 1. the baseline: writes with no subscription (another category, so page 1 is warm like later).
base_lat = [put(f"base-{i}", "xa-hoi")[1] for i in range(20)]
# The topics need a document before they can be subscribed to.
put("seed")
# 2. subscriptions.
topics = [f"{base}/vi/rss.xml", f"{base}/vi/atom.xml", f"{base}/vi/feed.json", f"{base}/vi/kinh-te/rss.xml"]
t0 = time.time()
for i in range(n):
    form = {"hub.mode": "subscribe", "hub.topic": topics[i % 4],
            "hub.callback": f"http://127.0.0.1:{sub_port}/cb/{i}?reader=bench"}
    if i % 2:
        form["hub.secret"] = f"secret-{i}"
    req = urllib.request.Request(f"{base}/websub", data=urllib.parse.urlencode(form).encode(),
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    # At most 20 verifications wait per callback host (then 503 with Retry-After): this client
    # sends to one host, so it waits a moment and asks again, as a reader's hub client would
    # (sooner than Retry-After says, since a local verification takes milliseconds).
    while True:
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                assert r.status == 202, r.status
            break
        except urllib.error.HTTPError as e:
            if e.code != 503:
                raise
            time.sleep(0.05)
deadline = time.time() + 120
while True:
    m = urllib.request.urlopen(f"{base}/metrics", timeout=30).read().decode()
    done = sum(float(l.rsplit(" ", 1)[1]) for l in m.splitlines()
               if l.startswith('bantin_hub_verifications_total{outcome="subscribed"}'))
    if done >= n:
        break
    if time.time() > deadline:
        sys.exit(f"only {done} of {n} subscriptions verified")
    time.sleep(0.05)
sub_secs = time.time() - t0
print(f"{n} subscriptions requested and verified in {sub_secs:.2f} s", file=sys.stderr)
time.sleep(1)

# 3. rounds.
rows = []
for r in range(rounds):
    urllib.request.urlopen(f"http://127.0.0.1:{sub_port}/_reset", timeout=30).read()
    # The same write with no subscriber, in the same state (after the same idle gap): an English
    # article touches only /en/ feeds, which nobody subscribed to, so the hub marks nothing.
    _, base_ms = put(f"round-{r}-en", lang="en")
    time.sleep(1.0)
    c0 = cpu()
    answered, write_ms = put(f"round-{r}")
    deadline = time.time() + 60
    while True:
        s = stats()
        if len(s["arrivals"]) >= n or time.time() > deadline:
            break
        time.sleep(0.02)
    c1 = cpu()
    arr = s["arrivals"]
    if len(arr) < n:
        sys.exit(f"round {r}: only {len(arr)} of {n} deliveries within 60 s")
    lat = [(t - answered) * 1000 for t in arr]
    rows.append((r, write_ms, pct(lat, 50), pct(lat, 99), max(lat), c1 - c0, len(arr), s["signed"], base_ms))
    print(f"round {r}: write {write_ms:.1f} ms (no subscriber: {base_ms:.1f} ms); deliveries p50 {pct(lat, 50):.0f} ms, p99 {pct(lat, 99):.0f} ms, "
          f"max {max(lat):.0f} ms; {len(arr)} delivered ({s['signed']} signed); cpu {c1 - c0:.2f} s", file=sys.stderr)
    time.sleep(1.5)
    extra = len(stats()["arrivals"]) - len(arr)
    if extra:
        sys.exit(f"round {r}: {extra} deliveries more than subscribers")
with open(out, "w") as f:
    f.write(f"baseline_write_p50\t{statistics.median(base_lat):.2f}\n")
    f.write(f"baseline_write_max\t{max(base_lat):.2f}\n")
    f.write(f"subscribe_secs\t{sub_secs:.2f}\n")
    for row in rows:
        f.write("round\t" + "\t".join(f"{x:.3f}" if isinstance(x, float) else str(x) for x in row) + "\n")
EOF
HWM=$(hwm_of "$PID")
RSS=$(rss_of "$PID")
CPU_TOTAL=$(cpu_of "$PID")

median_col() { # COLUMN of the round rows
    awk -F'\t' -v c="$1" '$1 == "round" {print $c}' "$OUT_DIR/rounds.tsv" | sort -g | awk '{a[NR] = $1} END {printf "%.0f", a[int((NR + 1) / 2)]}'
}
median_col1() { awk -F'\t' -v c="$1" '$1 == "round" {print $c}' "$OUT_DIR/rounds.tsv" | sort -g | awk '{a[NR] = $1} END {printf "%.1f", a[int((NR + 1) / 2)]}'; }
max_col() { awk -F'\t' -v c="$1" '$1 == "round" && $c > m {m = $c} END {printf "%.0f", m}' "$OUT_DIR/rounds.tsv"; }
val() { awk -F'\t' -v k="$1" '$1 == k {print $2}' "$OUT_DIR/rounds.tsv"; }

cat <<EOF

bantin $REV, built-in WebSub hub, $N subscriptions on one local subscriber server (half signed), $ROUNDS rounds (medians; max of maxima)
$(machine_line)
| measure | value | goal |
| --- | ---: | ---: |
| write's answer to delivery, p50 | $(median_col 4) ms | |
| write's answer to delivery, p99 | $(median_col 5) ms | <= 1,000 ms |
| write's answer to delivery, max | $(median_col 6) ms (worst round $(max_col 6) ms) | |
| the write's own latency, $N subscribers | $(median_col1 3) ms | unchanged |
| the write's own latency, no subscriber, same round (an \`en\` article) | $(median_col1 10) ms | |
| the write's own latency, no subscription yet (p50 of 20 back to back) | $(printf '%.1f' "$(val baseline_write_p50)") ms | |
| bantin CPU per round (render + 1,000 POSTs + store) | $(median_col1 7) s | |
| $N subscriptions requested and verified | $(val subscribe_secs) s | |
| bantin CPU, whole run | $CPU_TOTAL s | |
| bantin peak RSS (VmHWM) / at the end | $HWM MB / $RSS MB | <= 150 MB |
EOF
