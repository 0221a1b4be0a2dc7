#!/usr/bin/env python3
"""bench/cdn_watch.py: the writer and the watchers of bench/cdn.sh, through Varnish (stdlib only).

    cdn_watch.py write VARNISH TOKEN SECONDS [MONITORS]
        One new Vietnamese article a second, PUT through Varnish (live-N, newest of all, in a
        category, tag and byline of its own rotation). After each write's answer, every touched
        feed (language, category, tag, byline; RSS in identity and gzip, as Varnish caches them
        apart) is polled through Varnish every 10 ms until it lists live-N: the write's
        visibility is the time until the last of them does (10 s at most, else "not visible").
        Meanwhile MONITORS threads poll those feeds continuously, each remembering per feed and
        coding the newest live-N it has seen: a document whose newest live-N is older than one
        that client saw before is a regression ("older after newer").
        Prints one JSON line: writes, write_failures, visible, not_visible, p50/p99/max_ms,
        monitor_requests, monitor_errors, regressions.

    cdn_watch.py partner VARNISH KEY SECONDS FEEDS_FILE [PUBLIC]
        Partner (?key=) requests over the feeds in FEEDS_FILE (one path a line), alternating with
        public ones when PUBLIC is 1: every partner answer must be X-Cache: PASS,
        Cache-Control: private and carry the full text (content:encoded / content_html); no
        public answer may carry it.
        Prints one JSON line: partner_requests, partner_cached, partner_not_private,
        partner_without_full_text, public_requests, public_with_full_text, errors.
"""

import datetime
import gzip
import http.client
import json
import random
import re
import sys
import threading
import time
import urllib.parse

CATS = ["kinh-te", "xa-hoi", "van-hoa", "the-thao", "quoc-phong", "giao-duc", "nong-nghiep"]
LIVE = re.compile(rb"live-(\d+)")


def connect(base):
    u = urllib.parse.urlparse(base)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=10)


class Client:
    """One keep-alive connection, reopened after any error."""

    def __init__(self, base):
        self.base = base
        self.conn = None

    def request(self, method, path, body=None, headers=None):
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = connect(self.base)
            try:
                self.conn.request(method, path, body=body, headers=headers or {})
                r = self.conn.getresponse()
                data = r.read()
                return r.status, {k.lower(): v for k, v in r.getheaders()}, data
            except (OSError, http.client.HTTPException):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise


def body_of(headers, data):
    return gzip.decompress(data) if headers.get("content-encoding") == "gzip" else data


def newest(data):
    found = [int(m) for m in LIVE.findall(data)]
    return max(found) if found else -1


def touched(n):
    cat = CATS[n % len(CATS)]
    return [
        "/vi/rss.xml",
        f"/vi/{cat}/rss.xml",
        f"/vi/tag/live-tag-{n % 5}/rss.xml",
        f"/vi/author/live-writer-{n % 3}/rss.xml",
    ]


def pct(xs, p):
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def write_mode(base, token, seconds, monitors):
    stop = threading.Event()
    lock = threading.Lock()
    stats = {"monitor_requests": 0, "monitor_errors": 0, "regressions": 0}
    latencies, not_visible = [], [0]
    hot = sorted({p for n in range(105) for p in touched(n)})

    def monitor(seed):
        rnd = random.Random(seed)
        c = Client(base)
        seen = {}
        while not stop.is_set():
            path = rnd.choice(hot)
            coding = rnd.choice(["gzip", "identity"])
            try:
                status, h, data = c.request("GET", path, headers={"Accept-Encoding": coding})
            except Exception:
                with lock:
                    stats["monitor_errors"] += 1
                continue
            with lock:
                stats["monitor_requests"] += 1
                if status != 200:
                    stats["monitor_errors"] += 1
                    continue
            k = newest(body_of(h, data))
            if k < seen.get((path, coding), -1):
                with lock:
                    stats["regressions"] += 1
                print(f"regression: {path} {coding}: live-{k} after live-{seen[(path, coding)]}",
                      file=sys.stderr)
            seen[(path, coding)] = max(k, seen.get((path, coding), -1))

    def check(n, t0, wall):
        c = Client(base)
        pending = {(p, e) for p in touched(n) for e in ("gzip", "identity")}
        seen_at = {}  # (path, coding) -> ms after the write's answer, when an answer showed it
        deadline = t0 + 10
        while pending and time.monotonic() < deadline:
            for p, e in sorted(pending):
                try:
                    status, h, data = c.request("GET", p, headers={"Accept-Encoding": e})
                except Exception:
                    continue
                if status == 200 and newest(body_of(h, data)) >= n:
                    pending.discard((p, e))
                    seen_at[(p, e)] = (time.monotonic() - t0) * 1000
            if pending:
                time.sleep(0.01)
        with lock:
            if pending:
                not_visible[0] += 1
                print(f"live-{n} not visible within 10 s on {sorted(pending)}", file=sys.stderr)
            else:
                latencies.append(max(seen_at.values()))
            # Where the time went, for a look afterwards (wall clock, to set beside varnishlog).
            print(f"live-{n} answered at {wall:.3f}: " + ", ".join(
                f"{p} {e} {ms:.0f}" for (p, e), ms in sorted(seen_at.items(), key=lambda x: x[1])),
                file=sys.stderr)

    threads = [threading.Thread(target=monitor, args=(i,), daemon=True) for i in range(monitors)]
    for t in threads:
        t.start()
    writer = Client(base)
    checkers, failures, n = [], 0, 0
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        due = start + n
        time.sleep(max(0.0, due - time.monotonic()))
        published = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=5)
        article = {
            "id": f"live-{n}", "lang": "vi", "category": CATS[n % len(CATS)],
            "title": f"Tin mới live-{n}", "summary": "Tin mới trong lúc đo.",
            "content_html": "<p>" + "Nội dung tin mới. " * 40 + "</p>",
            "url": f"https://baolongan.example/vi/live/live-{n}",
            "author": f"Live Writer {n % 3}", "tags": [f"live tag {n % 5}"],
            "published_at": published.isoformat(timespec="seconds"), "status": "published",
        }
        try:
            status, _, data = writer.request(
                "PUT", f"/api/v1/articles/live-{n}", body=json.dumps(article).encode(),
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        except Exception as e:
            status, data = 0, str(e).encode()
        t0, wall = time.monotonic(), time.time()
        if status in (200, 201):
            t = threading.Thread(target=check, args=(n, t0, wall), daemon=True)
            t.start()
            checkers.append(t)
        else:
            failures += 1
            print(f"write live-{n}: {status} {data[:200]!r}", file=sys.stderr)
        n += 1
    for t in checkers:
        t.join()
    stop.set()
    for t in threads:
        t.join(timeout=15)
    out = {"writes": n, "write_failures": failures, "visible": len(latencies),
           "not_visible": not_visible[0], "p50_ms": pct(latencies, 50),
           "p99_ms": pct(latencies, 99), "max_ms": max(latencies) if latencies else None}
    out.update(stats)
    print(json.dumps(out))


def partner_mode(base, key, seconds, feeds_file, public):
    feeds = [l.strip() for l in open(feeds_file) if l.strip()]
    c = Client(base)
    s = dict(partner_requests=0, partner_cached=0, partner_not_private=0,
             partner_without_full_text=0, public_requests=0, public_with_full_text=0, errors=0)
    full = re.compile(rb"<content:encoded>|\"content_html\"|<content type=\"html\">")
    rnd = random.Random(11)
    start = time.monotonic()
    i = 0
    while time.monotonic() - start < seconds:
        path = rnd.choice(feeds)
        partner = not public or i % 2 == 0
        i += 1
        url = f"{path}?key={key}" if partner else path
        coding = rnd.choice(["gzip", "identity"])
        try:
            status, h, data = c.request("GET", url, headers={"Accept-Encoding": coding})
        except Exception:
            s["errors"] += 1
            continue
        if status != 200:
            s["errors"] += 1
            continue
        doc = body_of(h, data)
        if partner:
            s["partner_requests"] += 1
            s["partner_cached"] += h.get("x-cache") != "PASS"
            s["partner_not_private"] += not h.get("cache-control", "").startswith("private")
            s["partner_without_full_text"] += not full.search(doc)
        else:
            s["public_requests"] += 1
            s["public_with_full_text"] += bool(full.search(doc))
    print(json.dumps(s))


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "write":
        write_mode(sys.argv[2], sys.argv[3], float(sys.argv[4]),
                   int(sys.argv[5]) if len(sys.argv) > 5 else 4)
    elif mode == "partner":
        partner_mode(sys.argv[2], sys.argv[3], float(sys.argv[4]), sys.argv[5],
                     len(sys.argv) > 6 and sys.argv[6] == "1")
    else:
        sys.exit(__doc__)
