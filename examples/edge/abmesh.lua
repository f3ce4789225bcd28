-- abmesh forward-auth for HAProxy (1.8 or later; Lua).
--
--   http-request lua.abmesh_assign HOST:PORT SERVICE
--
-- calls abmeshd's forward-auth endpoint (--edge-listen HOST:PORT) for the
-- tests of SERVICE with the request's Cookie header and original scheme.
-- On a 200 it copies every x-abmesh-* answer header onto the request
-- (replacing the client's own) and keeps the Set-Cookie of a minted unit
-- in txn.abmesh_set_cookie. On any failure (abmeshd unreachable, slower
-- than the timeout, a 400 for a bad unit) it sets nothing, so the request
-- goes on to the default backend: the control. See docs/edges.md.
--
-- A plain socket (core.tcp) rather than core.httpclient: its connect
-- timeout is ours and it never retries, so failing open is fast on every
-- HAProxy version.

local timeout_s = 0.2

local function call_edge(txn, hostport, service)
    local host, port = string.match(hostport, "^(.+):(%d+)$")
    local req = txn.http:req_get_headers()
    local lines = {
        "GET /edge/v1/assign?service=" .. service .. " HTTP/1.1",
        "Host: " .. hostport,
        "Connection: close",
        "X-Forwarded-Proto: " .. (txn.f:ssl_fc() == 1 and "https" or "http"),
    }
    if req["cookie"] then
        local cookies = {}
        for i = 0, #req["cookie"] do cookies[#cookies + 1] = req["cookie"][i] end
        lines[#lines + 1] = "Cookie: " .. table.concat(cookies, "; ")
    end
    local s = core.tcp()
    s:settimeout(timeout_s)
    if not s:connect(host, tonumber(port)) then
        s:close()
        return nil
    end
    s:send(table.concat(lines, "\r\n") .. "\r\n\r\n")
    local status = s:receive("*l")
    if not status or not string.match(status, "^HTTP/1%.%d 200") then
        s:close()
        return nil
    end
    local headers = {}
    while true do
        local line = s:receive("*l")
        if not line or line == "" then break end
        local name, value = string.match(line, "^([^:]+):%s*(.-)%s*$")
        if name then headers[#headers + 1] = { string.lower(name), value } end
    end
    s:close()
    return headers
end

core.register_action("abmesh_assign", { "http-req" }, function(txn, hostport, service)
    local headers = call_edge(txn, hostport, service)
    if not headers then
        return -- fail open
    end
    for _, h in ipairs(headers) do
        if string.sub(h[1], 1, 9) == "x-abmesh-" then
            txn.http:req_set_header(h[1], h[2])
        elseif h[1] == "set-cookie" then
            txn:set_var("txn.abmesh_set_cookie", h[2])
        end
    end
end, 2)
