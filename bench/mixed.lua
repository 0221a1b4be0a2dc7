-- bench/mixed.lua (appended to a generated `paths = {...}` by bench/soak.sh): each request a
-- random feed page, gzip accepted.
local headers = { ["Accept-Encoding"] = "gzip" }
request = function()
    return wrk.format("GET", paths[math.random(#paths)], headers)
end
