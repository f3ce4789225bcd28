package forwardauth_test

import (
	"bufio"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/abmesh/abmesh/internal/daemon"
	"github.com/abmesh/abmesh/internal/testkit/daemontest"
)

// TestBadInputOnTheWire sends raw HTTP/1.1 requests with bad units to
// abmeshd's edge listener: each is answered 400 (by the endpoint or, for
// bytes HTTP forbids, by the server), never a 5xx, never with a routing
// header.
func TestBadInputOnTheWire(t *testing.T) {
	d := daemontest.Start(t, daemontest.Edge(), func(c *daemon.Config) { c.Edge.UnitHeader = "x-user" })
	for name, header := range map[string]string{
		"long cookie":         "Cookie: abmesh_unit=" + strings.Repeat("u", 300),
		"tab in header":       "X-User: a\tb",
		"control in cookie":   "Cookie: abmesh_unit=a\x01b",
		"DEL in header":       "X-User: a\x7fb",
		"not UTF-8 header":    "X-User: caf\xe9",
		"long trusted header": "X-User: " + strings.Repeat("u", 300),
	} {
		c, err := net.DialTimeout("tcp", d.EdgeAddr(), time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte("GET /edge/v1/assign?service=shop HTTP/1.1\r\nHost: abmesh\r\n" + header + "\r\nConnection: close\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		resp.Body.Close()
		c.Close()
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("x-abmesh-unit") != "" || resp.Header.Get("Set-Cookie") != "" {
			t.Errorf("%s: %s %v, want 400 without routing headers", name, resp.Status, resp.Header)
		}
	}
}
