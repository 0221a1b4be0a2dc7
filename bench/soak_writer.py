#!/usr/bin/env python3
"""bench/soak_writer.py BASE TOKEN PER_SECOND SECONDS: article PUTs at a steady rate for
bench/soak.sh, new articles and corrections of earlier ones (each touches its language, category,
tag and byline feeds). Prints one final line: "requests failed statuses" (failed = 5xx or no
answer; statuses as code=count,...)."""

import collections
import datetime
import http.client
import json
import sys
import time
import urllib.parse

base = urllib.parse.urlparse(sys.argv[1])
token, rate, seconds = sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
conn = http.client.HTTPConnection(base.hostname, base.port, timeout=30)
counts = collections.Counter()
start = time.monotonic()
n = 0
cats = ["kinh-te", "xa-hoi", "van-hoa", "the-thao", "quoc-phong", "giao-duc", "nong-nghiep"]
while time.monotonic() - start < seconds:
    i = n // 2 if n % 2 else n  # every other write corrects an earlier article
    aid = f"soak-{i}"
    updated = (datetime.datetime(2026, 11, 20, 9, 0, 0) + datetime.timedelta(seconds=n)).isoformat()
    article = {
        "id": aid, "lang": "vi" if i % 3 else "en", "category": cats[i % len(cats)],
        "title": f"Bài soak {i} (sửa {n})", "summary": "Tóm tắt bài kiểm tra độ bền.",
        "content_html": "<p>" + "Nội dung kiểm tra độ bền. " * 40 + "</p>",
        "url": f"https://baolongan.example/soak/{aid}", "author": f"Phóng viên {i % 7}",
        "published_at": "2026-11-20T08:00:00", "updated_at": updated,
        "tags": [f"soak {i % 11}", "độ bền"], "status": "published",
    }
    body = json.dumps(article)
    try:
        conn.request("PUT", f"/api/v1/articles/{aid}", body=body, headers={
            "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        r = conn.getresponse()
        r.read()
        counts[r.status] += 1
    except (OSError, http.client.HTTPException):
        counts[0] += 1
        conn.close()
        conn = http.client.HTTPConnection(base.hostname, base.port, timeout=30)
    n += 1
    time.sleep(max(0.0, start + n / rate - time.monotonic()))
failed = sum(v for k, v in counts.items() if k >= 500 or k == 0)
print(n, failed, ",".join(f"{k}={v}" for k, v in sorted(counts.items())))
