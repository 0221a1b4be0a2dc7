-- wrk script for bench/loadtest.sh's paced runs: each connection waits WRK_DELAY_MS between its
-- requests, so both servers get the same offered load and their latencies can be compared at
-- equal throughput (with wrk on the same cores, a saturated run also measures wrk's own backlog).
local pause = tonumber(os.getenv("WRK_DELAY_MS") or "1")

function delay()
    return pause
end
