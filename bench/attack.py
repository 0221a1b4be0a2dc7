#!/usr/bin/env python3
"""bench/attack.py: hold many hostile connections open against a server on 127.0.0.1 (for
bench/edge.sh).

  attack.py PORT MODE COUNT SECONDS [STATS_FILE]

MODE
  silent     connect and send nothing
  slowloris  send a request line, then one header line every 5 s, never finishing the head

Every connection the server closes is reopened after a 1 s pause (a patient attacker keeps its
count), and connects are paced at up to 2,000 per second. Every second the number of connections
open, the number the server has closed so far and the number of failed connects are appended to
STATS_FILE as "time open closed failed". Stops after SECONDS.
"""

import asyncio
import resource
import sys
import time


async def hold(port, mode, stop_at, stats):
    while time.monotonic() < stop_at:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            stats["failed"] += 1
            await asyncio.sleep(1)
            continue
        stats["open"] += 1
        try:
            if mode == "slowloris":
                writer.write(b"GET /vi/rss.xml HTTP/1.1\r\nHost: bench\r\n")
                await writer.drain()
            i = 0
            while time.monotonic() < stop_at:
                try:
                    # A read that returns means the server closed (or answered): either way the
                    # connection is done.
                    data = await asyncio.wait_for(reader.read(4096), timeout=5)
                    if not data:
                        break
                except asyncio.TimeoutError:
                    pass
                if mode == "slowloris":
                    writer.write(b"X-Drip-%d: y\r\n" % i)
                    i += 1
                    await writer.drain()
        except (OSError, ConnectionError):
            pass
        finally:
            stats["open"] -= 1
            stats["closed"] += 1
            writer.close()
        await asyncio.sleep(1)


async def report(path, stop_at, stats):
    with open(path, "a") as f:
        while time.monotonic() < stop_at:
            f.write(f"{time.time():.1f} {stats['open']} {stats['closed']} {stats['failed']}\n")
            f.flush()
            await asyncio.sleep(1)


async def main():
    port, mode, count, seconds = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    stats_file = sys.argv[5] if len(sys.argv) > 5 else "/dev/null"
    if mode not in ("silent", "slowloris"):
        sys.exit(f"unknown mode {mode}")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    stop_at = time.monotonic() + seconds
    stats = {"open": 0, "closed": 0, "failed": 0}
    tasks = [asyncio.create_task(report(stats_file, stop_at, stats))]
    for i in range(count):
        tasks.append(asyncio.create_task(hold(port, mode, stop_at, stats)))
        if i % 100 == 99:
            await asyncio.sleep(0.05)
    await asyncio.gather(*tasks, return_exceptions=True)


if __name__ == "__main__":
    asyncio.run(main())
