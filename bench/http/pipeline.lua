-- wrk script for HTTP/1.1 pipelining, used by bench/http/run_http_bench.sh:
--   wrk -s bench/http/pipeline.lua URL -- DEPTH
-- init builds one buffer of DEPTH identical GET requests (wrk.format: method,
-- path and Host of URL); request hands wrk that buffer every time. wrk counts
-- the requests in the buffer and sends the next batch only once all DEPTH
-- responses have come back, so each connection keeps DEPTH requests in
-- flight, and "requests" in wrk's summary counts responses, not batches.
-- The same approach as TechEmpower's pipeline.lua.

local batch

init = function(args)
  local depth = tonumber(args[1]) or 1
  local reqs = {}
  for i = 1, depth do
    reqs[i] = wrk.format()
  end
  batch = table.concat(reqs)
end

request = function()
  return batch
end
