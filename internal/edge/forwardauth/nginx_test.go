package forwardauth_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"text/template"
)

const nginxBin = "/usr/sbin/nginx"

// TestNginx runs a real nginx with auth_request (testdata/nginx.conf.tmpl,
// the configuration of docs/edges.md) in front of two upstreams of the
// test "checkout" of service "shop": see checkProxy.
func TestNginx(t *testing.T) {
	if _, err := os.Stat(nginxBin); err != nil {
		t.Skipf("nginx is not installed (%s; Debian package nginx): %v", nginxBin, err)
	}
	p := startEdge(t, edgeTest{id: "checkout", service: "shop", other: "treatment"}, func(edge, control, treatment string) string {
		dir, listen := t.TempDir(), freeAddr(t)
		var conf bytes.Buffer
		if err := template.Must(template.ParseFiles("testdata/nginx.conf.tmpl")).Execute(&conf, map[string]any{
			"Root": os.Geteuid() == 0, "Dir": dir, "Listen": listen, "Edge": edge, "Control": control, "Treatment": treatment,
		}); err != nil {
			t.Fatal(err)
		}
		path := writeConfig(t, dir, "nginx.conf", conf.String())
		errorLog := filepath.Join(dir, "error.log")
		startProxy(t, listen, func() string { b, _ := os.ReadFile(errorLog); return string(b) },
			nginxBin, "-p", dir, "-c", path, "-e", errorLog)
		return "http://" + listen
	})
	checkProxy(t, p)
}
