-- bench/readers.lua: wrk script for bench/edge.sh's distinct-reader flood. Every request is a
-- new reader to bantin (a User-Agent never sent before: thread id and a counter) for the next
-- feed path of the file named by the first script argument, round robin, unconditional, gzip.
--   wrk -t2 -c64 -d30s -s bench/readers.lua http://127.0.0.1:PORT -- PATHS_FILE
local threads = 0

function setup(thread)
    threads = threads + 1
    thread:set("tid", threads)
end

function init(args)
    paths = {}
    for line in io.lines(args[1]) do
        paths[#paths + 1] = line
    end
    n = tid or 0
end

function request()
    n = n + 1
    local path = paths[(n % #paths) + 1]
    return wrk.format("GET", path, {
        ["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64) FeedReader/" .. tid .. "." .. n,
        ["Accept-Encoding"] = "gzip",
    })
end
