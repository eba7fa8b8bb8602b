-- Hold a request while its backend has no replica ready (a service at zero that the autoscaler
-- is waking): HAProxy answers 503 at once when no server is up, and queues (`timeout queue`)
-- only for servers that are up but full. A server found again by DNS counts as up before its
-- first check, while the replica may not listen yet: only a passed check counts here. Looks
-- every 50 ms, for at most `timeout` milliseconds; the request then goes on as any other.
--
--   global
--       lua-load /usr/local/etc/haproxy/wake.lua
--   frontend web
--       http-request lua.wait-for-server web 10000 if { nbsrv(web) eq 0 }
local function ready(backend)
    local proxy = core.backends[backend]
    if proxy == nil then
        return true -- a misspelt backend must not hold every request
    end
    for _, server in pairs(proxy.servers) do
        local stats = server:get_stats()
        if stats.status == "UP" and string.match(stats.check_status or "", "OK$") then
            return true
        end
    end
    return false
end

core.register_action("wait-for-server", { "http-req" }, function(txn, backend, timeout)
    local limit = tonumber(timeout) or 10000
    local waited = 0
    while waited < limit and not ready(backend) do
        core.msleep(50)
        waited = waited + 50
    end
end, 2)
