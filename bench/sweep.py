#!/usr/bin/env python3
"""bench/sweep.py: request every page of every feed of a bantin instance, or made-up URLs, and
report what came back (for bench/edge.sh and bench/soak.sh).

  sweep.py BASE pages [THREADS]     every feed in /feeds.opml, all three formats, ?page=1, 2, ...
                                    until a 404; gzip accepted
  sweep.py BASE junk COUNT [THREADS] COUNT feed-shaped URLs that do not exist (unknown tags and
                                    bylines, pages far past the end, bad page numbers)
  sweep.py BASE deep SECONDS [THREADS]  for SECONDS, what a crawler asks for: HTML previews and
                                    older pages (?page=2..400) of the listed feeds, at random
  sweep.py BASE misses COUNT        COUNT page-1 misses, one at a time, each of a listed tag or
                                    byline feed nobody asked for before (its feed.json): prints
                                    "misses max_ms median_ms"
  sweep.py BASE readers SECONDS [THREADS]  for SECONDS, a flood of distinct readers: every
                                    request a new User-Agent (a new reader to bantin) for the
                                    next feed of every listed feed in all three formats, round
                                    robin, unconditional, gzip accepted
  sweep.py BASE paths               print every listed feed's path in all three formats, one per
                                    line (for bench/readers.lua)
  sweep.py PID mem                  the memory of process PID: "rss_kb anon_kb shmem_kb
                                    memfd_bytes memfds fds"

Prints one line: "requests statuses seconds", statuses as code=count,code=count (but see misses).
"""

import collections
import concurrent.futures
import http.client
import os
import random
import re
import sys
import threading
import time
import urllib.parse


def mem(pid):
    status = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            status[k] = v.split()[0] if v.split() else "0"
    memfd_bytes = memfds = fds = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        fds += 1
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith("/memfd:"):
                memfds += 1
                memfd_bytes += os.stat(f"/proc/{pid}/fd/{fd}").st_size
        except OSError:
            pass
    print(status.get("VmRSS", 0), status.get("RssAnon", 0), status.get("RssShmem", 0),
          memfd_bytes, memfds, fds)


local = threading.local()


def conn(host, port):
    c = getattr(local, "conn", None)
    if c is None:
        c = local.conn = http.client.HTTPConnection(host, port, timeout=30)
    return c


def get(host, port, path, agent=None):
    headers = {"Accept-Encoding": "gzip"}
    if agent is not None:
        headers["User-Agent"] = agent
    for attempt in range(3):
        c = conn(host, port)
        try:
            c.request("GET", path, headers=headers)
            r = c.getresponse()
            r.read()
            if r.getheader("connection", "").lower() == "close":
                c.close()
                local.conn = None
            return r.status
        except (OSError, http.client.HTTPException):
            c.close()
            local.conn = None
    return 0


def feeds(host, port):
    c = http.client.HTTPConnection(host, port, timeout=30)
    c.request("GET", "/feeds.opml")
    body = c.getresponse().read().decode()
    paths = []
    for url in re.findall(r'xmlUrl="([^"]+)"', body):
        path = urllib.parse.urlparse(url.replace("&amp;", "&")).path
        for fmt in ("rss.xml", "atom.xml", "feed.json"):
            paths.append(path.rsplit("/", 1)[0] + "/" + fmt)
    return paths


def listed_dirs(host, port):
    """The listed feeds' directories (/vi/, /vi/tag/gia-lua/...), in list order."""
    return list(dict.fromkeys(p.rsplit("/", 1)[0] + "/" for p in feeds(host, port)))


def sweep_feed(host, port, path, counts, lock):
    page = 1
    n = 0
    while True:
        status = get(host, port, f"{path}?page={page}")
        n += 1
        with lock:
            counts[status] += 1
        if status != 200 or page > 100_000:
            return n
        page += 1


def main():
    if sys.argv[2] == "mem":
        mem(int(sys.argv[1]))
        return
    base = urllib.parse.urlparse(sys.argv[1])
    host, port = base.hostname, base.port
    mode = sys.argv[2]
    if mode == "paths":
        print("\n".join(feeds(host, port)))
        return
    counts = collections.Counter()
    lock = threading.Lock()
    started = time.monotonic()
    if mode == "pages":
        threads = int(sys.argv[3]) if len(sys.argv) > 3 else 4
        paths = feeds(host, port)
        with concurrent.futures.ThreadPoolExecutor(threads) as pool:
            total = sum(pool.map(lambda p: sweep_feed(host, port, p, counts, lock), paths))
    elif mode == "junk":
        count = int(sys.argv[3])
        threads = int(sys.argv[4]) if len(sys.argv) > 4 else 4
        rng = random.Random(42)

        def junk(i):
            kind = i % 4
            word = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(12))
            fmt = ("rss.xml", "atom.xml", "feed.json")[i % 3]
            path = [
                f"/vi/tag/{word}/{fmt}",
                f"/en/author/{word}/{fmt}",
                f"/vi/{fmt}?page={rng.randint(1000, 100000)}",
                f"/vi/tag/{word}/{fmt}?page={rng.randint(2, 100000)}",
            ][kind]
            status = get(host, port, path)
            with lock:
                counts[status] += 1
            return 1

        with concurrent.futures.ThreadPoolExecutor(threads) as pool:
            total = sum(pool.map(junk, range(count)))
    elif mode == "deep":
        seconds = float(sys.argv[3])
        threads = int(sys.argv[4]) if len(sys.argv) > 4 else 8
        dirs = listed_dirs(host, port)
        deadline = time.monotonic() + seconds

        def crawl(seed):
            rng = random.Random(seed)
            n = 0
            while time.monotonic() < deadline:
                d = rng.choice(dirs)
                page = rng.randint(1, 400) if rng.random() < 0.9 else 1
                what = rng.choice(["", "rss.xml", "atom.xml", "feed.json", ""])
                status = get(host, port, f"{d}{what}?page={page}")
                n += 1
                with lock:
                    counts[status] += 1
            return n

        with concurrent.futures.ThreadPoolExecutor(threads) as pool:
            total = sum(pool.map(crawl, range(threads)))
    elif mode == "readers":
        seconds = float(sys.argv[3])
        threads = int(sys.argv[4]) if len(sys.argv) > 4 else 4
        paths = feeds(host, port)
        deadline = time.monotonic() + seconds
        serial = iter(range(1 << 62))  # next() on a shared iterator is atomic under the GIL

        def flood(seed):
            n = 0
            while time.monotonic() < deadline:
                i = next(serial)
                agent = f"Mozilla/5.0 (X11; Linux x86_64) FeedReader/{i}.{seed}"
                status = get(host, port, paths[i % len(paths)], agent)
                n += 1
                with lock:
                    counts[status] += 1
            return n

        with concurrent.futures.ThreadPoolExecutor(threads) as pool:
            total = sum(pool.map(flood, range(threads)))
    elif mode == "misses":
        count = int(sys.argv[3])
        dirs = [d for d in listed_dirs(host, port) if "/tag/" in d or "/author/" in d]
        random.Random(7).shuffle(dirs)
        times = []
        for d in dirs[:count]:
            c = http.client.HTTPConnection(host, port, timeout=30)
            t = time.monotonic()
            c.request("GET", f"{d}feed.json", headers={"Accept-Encoding": "gzip"})
            r = c.getresponse()
            r.read()
            times.append((time.monotonic() - t) * 1000)
            c.close()
            time.sleep(0.2)
        times.sort()
        if not times:
            print("0 - -")
            return
        print(f"{len(times)} {times[-1]:.1f} {times[len(times) // 2]:.1f}")
        return
    else:
        sys.exit(f"unknown mode {mode}")
    seconds = time.monotonic() - started
    statuses = ",".join(f"{k}={v}" for k, v in sorted(counts.items()))
    print(f"{total} {statuses} {seconds:.1f}")


if __name__ == "__main__":
    main()
