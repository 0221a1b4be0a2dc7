#
# Varnish in front of bantin replicas: the in-house CDN tier (README "CDN").
#
# What it does, and why:
# - Caches what bantin marks `public` for its `max-age`, keyed by URL and (through bantin's
#   `Vary: Accept-Encoding`) by the encoding, normalised here to br, gzip or none so a feed has at
#   most three copies. Varnish must run with `-p http_gzip_support=off`: with it on, Varnish
#   rewrites every backend request to `Accept-Encoding: gzip` and bantin's brotli bodies are never
#   used.
# - Never stores a partner variant: `?key=` and `Authorization` requests are passed to a replica
#   and never looked up; any `private` / `no-store` answer is not stored (built-in VCL).
# - Tags every object with its `Surrogate-Key` (xkey), and drops exactly the touched feeds when a
#   replica sends `PURGE` with `xkey-purge: k1 k2` after a write (`[cdn] purge_kind = "xkey"`).
#   A hard purge, not a soft one: after a write the next request must be a miss, never the old
#   document from grace.
# - `stale-while-revalidate`: within it, a stale object is answered at once and refreshed in the
#   background. `stale-if-error`: while no replica is healthy (or refetches fail), the last good
#   copy is served for that long.
# - Round-robin over the replicas, each probed on /healthz (a process that serves; see the
#   probe for why not /readyz), and a failed fetch is retried on the next replica, so a replica
#   dying costs clients nothing.
#
# The replicas are declared in `backends.vcl` (found on vcl_path): the one beside this file is
# for deploy/compose.yaml; tests and bench/cdn.sh write their own.
#
#   varnishd -F -a :6081 -f /etc/varnish/bantin.vcl -p vcl_path=/etc/varnish \
#            -p http_gzip_support=off -s malloc,256m

vcl 4.1;

import directors;
import std;
import xkey;

# Health of a replica: /healthz answers 200 while its process serves. Not /readyz (503 while
# the database is unreachable): in a database outage every replica is unready at once, and a
# director with no healthy backend fails every miss and every partner request outright, while
# a replica still answers them from its own cache (its last good copies, stale-if-error). A
# replica that cannot render a miss answers 503, and the fetch is retried on the next one.
probe bantin_ready {
    .url = "/healthz";
    .expected_response = 200;
    .interval = 1s;
    .timeout = 1s;
    .window = 3;
    .threshold = 2;
    # Healthy at start: a replica that answers nothing is marked sick within two probes.
    .initial = 2;
}

# Defines the backends (with `.probe = bantin_ready`) and, in a vcl_init, the round-robin
# director `replicas` over them.
include "backends.vcl";

# Who may purge: the replicas' networks (loopback for a single host; compose's private network).
acl purgers {
    "127.0.0.1";
    "::1";
    "10.0.0.0"/8;
    "172.16.0.0"/12;
    "192.168.0.0"/16;
}

sub vcl_recv {
    if (req.restarts == 0) {
        unset req.http.X-Bantin-Refetch;
    }
    set req.backend_hint = replicas.backend();

    if (req.method == "PURGE") {
        if (client.ip !~ purgers) {
            return (synth(403, "Forbidden"));
        }
        if (req.http.xkey-purge) {
            set req.http.n-gone = xkey.purge(req.http.xkey-purge);
            return (synth(200, "Invalidated " + req.http.n-gone + " objects"));
        }
        # Without keys: purge this one URL (every encoding of it).
        return (purge);
    }

    # Operations, the API, WebSub and readership pages are the origin's business.
    if (req.url ~ "^/(healthz|readyz|metrics|api/|stats|websub)") {
        return (pass);
    }

    # A partner variant is never looked up nor stored (bantin also marks it `private`).
    if (req.url ~ "[?&]key=" || req.http.Authorization) {
        return (pass);
    }

    # bantin's feeds and pages set no cookies; a browser's cookies must not make them uncacheable.
    if (req.method == "GET" || req.method == "HEAD") {
        unset req.http.Cookie;
    }

    # One variant per coding bantin has (Vary: Accept-Encoding), not one per client's header.
    if (req.http.Accept-Encoding ~ "(^|[ ,])br([ ;,]|$)") {
        set req.http.Accept-Encoding = "br";
    } elsif (req.http.Accept-Encoding ~ "(?i)gzip") {
        set req.http.Accept-Encoding = "gzip";
    } else {
        unset req.http.Accept-Encoding;
    }

    # Second pass of an object stale past its stale-while-revalidate with a healthy replica (see
    # vcl_hit): no grace, so this is a miss and the client waits for the fresh copy.
    if (req.http.X-Bantin-Refetch) {
        set req.grace = 0s;
    }
    # Falls through to the built-in vcl_recv (Host, methods).
}

sub vcl_hit {
    # Grace is stale-if-error long (vcl_backend_response); while a replica is healthy only
    # stale-while-revalidate of it is used, so a stale copy is served at most that long.
    if (obj.ttl < 0s && req.restarts == 0 && std.healthy(req.backend_hint) &&
        obj.ttl + std.duration(obj.http.X-Bantin-Swr, 0s) < 0s) {
        set req.http.X-Bantin-Refetch = "1";
        return (restart);
    }
}

sub vcl_backend_fetch {
    unset bereq.http.X-Bantin-Refetch;
}

sub vcl_backend_response {
    if (beresp.status >= 500 && bereq.method ~ "^(GET|HEAD)$") {
        # Another replica may answer (round robin); a background refresh that still fails keeps
        # the stale copy in place (stale-if-error).
        if (bereq.retries < 4) {
            return (retry);
        }
        if (bereq.is_bgfetch) {
            return (abandon);
        }
    }

    # The object's surrogate keys, for `xkey-purge`. A feed's 404 has them too (a tag with no
    # article yet): the write that creates the feed purges its cached 404.
    if (beresp.http.Surrogate-Key) {
        set beresp.http.xkey = beresp.http.Surrogate-Key;
    }

    # An error without a Cache-Control of its own: a second, enough to fold a flood of it into
    # one fetch a second (a 404 of a feed that does not exist yet is also purged by key, above).
    if (beresp.status >= 400 && !beresp.http.Cache-Control) {
        set beresp.ttl = 1s;
        set beresp.grace = 0s;
        set beresp.keep = 0s;
        return (deliver);
    }

    # Varnish takes the TTL from max-age and the grace from stale-while-revalidate; keep the
    # latter for vcl_hit and stretch the grace to stale-if-error.
    set beresp.http.X-Bantin-Swr = "0s";
    if (beresp.http.Cache-Control ~ "stale-while-revalidate=[0-9]+") {
        set beresp.http.X-Bantin-Swr = regsub(beresp.http.Cache-Control,
            "^.*stale-while-revalidate=([0-9]+).*$", "\1s");
    }
    if (beresp.http.Cache-Control ~ "stale-if-error=[0-9]+") {
        set beresp.grace = std.duration(regsub(beresp.http.Cache-Control,
            "^.*stale-if-error=([0-9]+).*$", "\1s"), beresp.grace);
    }
    # Past the grace, still kept for a conditional refetch (bantin answers 304 if unchanged).
    set beresp.keep = 1h;
    # Falls through to the built-in vcl_backend_response: `private`, `no-store`, `no-cache`,
    # Set-Cookie and `Vary: *` are never stored.
}

sub vcl_backend_error {
    # Connection refused or reset (a replica died between two probes; a dying process may still
    # accept connections for a moment): the director's next pick. Round robin is shared by all
    # fetches, so that pick may be the dead replica again; four retries (Varnish's max_retries)
    # make a client error unlikely until the probe marks it sick (within about two seconds).
    if (bereq.retries < 4) {
        return (retry);
    }
}

sub vcl_deliver {
    # Whether this answer came from the cache: tests, benchmarks and operators read it.
    if (obj.uncacheable) {
        set resp.http.X-Cache = "PASS";
    } elsif (obj.hits > 0) {
        set resp.http.X-Cache = "HIT";
    } else {
        set resp.http.X-Cache = "MISS";
    }
    unset resp.http.xkey;
    unset resp.http.X-Bantin-Swr;
}
