-- bench/api_put.lua: wrk script for bench/api_throughput.sh. Every request PUTs a new article,
-- /api/v1/articles/<ID_PREFIX>-<thread>-<n>, with the JSON of TEMPLATE_FILE, in which %ID% is
-- replaced by that id (the article's id, url and title) and %TS% by a distinct published_at in
-- the past. Each thread counts the statuses it gets (201 expected: every id is new); done() prints
--   PUTSTATS created=<201s> other=<anything else> first_bad=<status and body of the first other>
--
--   TEMPLATE_FILE=t.json BANTIN_TOKEN=... ID_PREFIX=put wrk -t2 -c16 -d30s --latency -s bench/api_put.lua http://127.0.0.1:8080

local token = os.getenv("BANTIN_TOKEN") or error("BANTIN_TOKEN is not set")
local prefix = os.getenv("ID_PREFIX") or "put"
local template_file = os.getenv("TEMPLATE_FILE") or error("TEMPLATE_FILE is not set")

local f = assert(io.open(template_file, "rb"))
local template = f:read("*a")
f:close()

-- The template cut at its markers: parts[1], marker 1, parts[2], marker 2, ..., parts[k + 1].
local parts, markers = {}, {}
do
    local pos = 1
    while true do
        local si = template:find("%ID%", pos, true)
        local st = template:find("%TS%", pos, true)
        local s, m = si, "ID"
        if st and (not si or st < si) then s, m = st, "TS" end
        if not s then break end
        parts[#parts + 1] = template:sub(pos, s - 1)
        markers[#markers + 1] = m
        pos = s + 4
    end
    parts[#parts + 1] = template:sub(pos)
end

local threads = {}

function setup(thread)
    threads[#threads + 1] = thread
    thread:set("tid", #threads)
end

function init(args)
    n = 0
    created = 0
    other = 0
    first_bad = ""
end

local headers = {}
local base = 1767225600 -- 2026-01-01T00:00:00Z
local pieces = {}

-- wrk calls request() once in the first thread to check the script before any connection, so
-- <prefix>-1-1 is built but never sent.
function request()
    n = n + 1
    local id = prefix .. "-" .. tid .. "-" .. n
    -- One minute apart, each thread in its own stretch of the past.
    local ts = os.date("!%Y-%m-%dT%H:%M:%S+00:00", base - (tid * 1000000 + n) * 60)
    local k = 0
    for i = 1, #markers do
        pieces[k + 1] = parts[i]
        pieces[k + 2] = (markers[i] == "ID") and id or ts
        k = k + 2
    end
    pieces[k + 1] = parts[#parts]
    local body = table.concat(pieces, "", 1, k + 1)
    headers["Content-Type"] = "application/json"
    headers["Authorization"] = "Bearer " .. token
    return wrk.format("PUT", "/api/v1/articles/" .. id, headers, body)
end

function response(status, headers, body)
    if status == 201 then
        created = created + 1
    else
        other = other + 1
        if first_bad == "" then
            first_bad = tostring(status) .. " " .. string.sub(body or "", 1, 300):gsub("\n", " ")
        end
    end
end

function done(summary, latency, requests)
    local c, o, bad = 0, 0, ""
    for _, t in ipairs(threads) do
        c = c + (t:get("created") or 0)
        o = o + (t:get("other") or 0)
        if bad == "" then bad = t:get("first_bad") or "" end
    end
    io.write(string.format("PUTSTATS created=%d other=%d first_bad=%s\n", c, o, bad))
end
