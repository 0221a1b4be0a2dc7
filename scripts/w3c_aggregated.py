#!/usr/bin/env python3
"""scripts/w3c_aggregated.py: the W3C Feed Validation Service, run offline, over every page of a
running bantin that holds aggregated items (an Atom `<source>` or an RSS `<source url=…>`).

  git clone https://github.com/w3c/feedvalidator  (or any copy of it), pip install lxml html5lib rdflib
  python3 scripts/w3c_aggregated.py --base http://127.0.0.1:8080 --validator ../feedvalidator

Checks the language and category feeds listed in /feeds.opml in RSS and Atom at the online
service's level ("AA"), prints every error and warning, and exits 1 if there is any.
"""

import argparse
import re
import sys
import urllib.request


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", default="http://127.0.0.1:8080")
    ap.add_argument("--validator", required=True, help="a checkout of w3c/feedvalidator")
    args = ap.parse_args()
    sys.path.insert(0, args.validator.rstrip("/") + "/src")
    import feedvalidator
    from feedvalidator import compatibility
    from feedvalidator.formatter.text_plain import Formatter

    base = args.base.rstrip("/")
    opml = urllib.request.urlopen(base + "/feeds.opml").read().decode()
    urls = [u for u in re.findall(r'xmlUrl="([^"]*)"', opml) if "/tag/" not in u and "/author/" not in u]
    pages = bad = 0
    for u in urls:
        path = u.split("://", 1)[1].split("/", 1)[1]
        for fmt in ("rss.xml", "atom.xml"):
            url = f"{base}/{path}".replace("rss.xml", fmt)
            body = urllib.request.urlopen(url).read()
            if b"<source" not in body:
                continue
            pages += 1
            try:
                events = feedvalidator.validateString(body, firstOccurrenceOnly=1, base=u.replace("rss.xml", fmt))["loggedEvents"]
            except feedvalidator.logging.ValidationFailure as vf:
                events = [vf.event]
            out = Formatter(compatibility.AA(events))
            if out:
                bad += 1
                print("==", url)
                print("\n".join(out))
    print(f"{pages} pages with aggregated items, {bad} with errors or warnings")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
