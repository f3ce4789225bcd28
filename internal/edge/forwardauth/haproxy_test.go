package forwardauth_test

import (
	"os"
	"testing"
)

const haproxyBin = "/usr/sbin/haproxy"

// TestHAProxy runs a real HAProxy with examples/edge/haproxy.cfg and
// abmesh.lua, as docs/edges.md gives them (only the addresses changed), in
// front of two upstreams of the test "ui-layout" of service "frontend":
// see checkProxy.
func TestHAProxy(t *testing.T) {
	if _, err := os.Stat(haproxyBin); err != nil {
		t.Skipf("HAProxy is not installed (%s; Debian package haproxy): %v", haproxyBin, err)
	}
	p := startEdge(t, edgeTest{id: "ui-layout", service: "frontend", other: "two-column"}, func(edge, control, twoColumn string) string {
		dir, listen := t.TempDir(), freeAddr(t)
		cfg, err := os.ReadFile("../../../examples/edge/haproxy.cfg")
		if err != nil {
			t.Fatal(err)
		}
		lua, err := os.ReadFile("../../../examples/edge/abmesh.lua")
		if err != nil {
			t.Fatal(err)
		}
		luaPath := writeConfig(t, dir, "abmesh.lua", string(lua))
		path := writeConfig(t, dir, "haproxy.cfg", string(cfg),
			"lua-load abmesh.lua", "lua-load "+luaPath,
			"bind 127.0.0.1:8090", "bind "+listen,
			"lua.abmesh_assign 127.0.0.1:7090", "lua.abmesh_assign "+edge,
			"127.0.0.1:8081", control,
			"127.0.0.1:8082", twoColumn)
		startProxy(t, listen, func() string { return "" }, haproxyBin, "-f", path, "-db")
		return "http://" + listen
	})
	checkProxy(t, p)
}
