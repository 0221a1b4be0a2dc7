#!/usr/bin/env python3
"""bench/attack.py: hold many hostile connections open against a server on 127.0.0.1 (for
bench/edge.sh).

  attack.py PORT MODE COUNT SECONDS [STATS_FILE]

MODE
  silent     connect and send nothing
  slowloris  send a request line, then one header line every 5 s, never finishing the head

Every connection the server closes is reopened after a 1 s pause (a patient attacker keeps its
count); new connections are opened at up to 2,000 per second. Every second the number of
connections open, the number the server has closed so far and the number of failed connects are
appended to STATS_FILE as "time open closed failed". Stops after SECONDS.

It is written on bare non-blocking sockets and epoll (selectors), not asyncio streams: the
attacker shares the machine's cores with the servers and wrk, and must cost as little CPU as it
can, or the benchmark would measure the attacker.
"""

import errno
import heapq
import resource
import selectors
import socket
import sys
import time

DRIP_EVERY = 5.0
REOPEN_AFTER = 1.0
OPEN_RATE = 2000


def main():
    port, mode, count, seconds = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    stats_file = open(sys.argv[5] if len(sys.argv) > 5 else "/dev/null", "a")
    if mode not in ("silent", "slowloris"):
        sys.exit(f"unknown mode {mode}")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    sel = selectors.DefaultSelector()
    now = time.monotonic()
    stop_at = now + seconds
    # (when, sequence, kind, sock-or-None): "open" a new connection, or "drip" a header line; the
    # sequence number breaks ties so sockets are never compared.
    seq = [0]

    def timer(when, kind, sock=None):
        seq[0] += 1
        return (when, seq[0], kind, sock)

    timers = [timer(now + i / OPEN_RATE, "open") for i in range(count)]
    heapq.heapify(timers)
    live = {}  # fd -> [sock, drips sent]
    stats = {"open": 0, "closed": 0, "failed": 0}
    next_report = now

    def close(sock, reopen):
        fd = sock.fileno()
        if fd in live:
            del live[fd]
            stats["open"] -= 1
            stats["closed"] += 1
        try:
            sel.unregister(sock)
        except (KeyError, ValueError):
            pass
        sock.close()
        if reopen:
            heapq.heappush(timers, timer(time.monotonic() + REOPEN_AFTER, "open"))

    while True:
        now = time.monotonic()
        if now >= stop_at:
            break
        if now >= next_report:
            stats_file.write(f"{time.time():.1f} {stats['open']} {stats['closed']} {stats['failed']}\n")
            stats_file.flush()
            next_report = now + 1
        while timers and timers[0][0] <= now:
            _, _, kind, sock = heapq.heappop(timers)
            if kind == "open":
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.setblocking(False)
                err = s.connect_ex(("127.0.0.1", port))
                if err not in (0, errno.EINPROGRESS):
                    stats["failed"] += 1
                    s.close()
                    heapq.heappush(timers, timer(now + REOPEN_AFTER, "open"))
                    continue
                live[s.fileno()] = [s, 0]
                stats["open"] += 1
                sel.register(s, selectors.EVENT_READ)
                if mode == "slowloris":
                    heapq.heappush(timers, timer(now + 0.05, "drip", s))
            elif sock.fileno() in live:
                entry = live[sock.fileno()]
                line = (b"GET /vi/rss.xml HTTP/1.1\r\nHost: bench\r\n" if entry[1] == 0
                        else b"X-Drip-%d: y\r\n" % entry[1])
                try:
                    sock.send(line)
                    entry[1] += 1
                    heapq.heappush(timers, timer(now + DRIP_EVERY, "drip", sock))
                except OSError:
                    close(sock, True)
        timeout = max(0.0, min(stop_at, next_report, timers[0][0] if timers else stop_at) - now)
        for key, _ in sel.select(timeout):
            sock = key.fileobj
            try:
                data = sock.recv(4096)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                close(sock, True)
            # Anything the server sends (a 408 or an answer) is read and ignored; a close is
            # what counts.
    for entry in list(live.values()):
        entry[0].close()


if __name__ == "__main__":
    main()
