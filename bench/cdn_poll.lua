-- bench/cdn_poll.lua (appended to a generated `feeds = {{path, etag}, ...}`, `key` and
-- `partner_share` by bench/cdn.sh): each request a random feed, gzip accepted; every other one
-- revalidates with the ETag the feed had at the start (a 304 while it is unchanged, like an
-- aggregator's poll); a `partner_share` of them carry the partner's ?key= (passed by Varnish).
local n = 0
request = function()
    n = n + 1
    local f = feeds[math.random(#feeds)]
    local headers = { ["Accept-Encoding"] = "gzip" }
    if partner_share > 0 and math.random() < partner_share then
        return wrk.format("GET", f[1] .. "?key=" .. key, headers)
    end
    if n % 2 == 0 and f[2] ~= "" then
        headers["If-None-Match"] = f[2]
    end
    return wrk.format("GET", f[1], headers)
end
