package forwardauth_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"text/template"
	"time"

	"gonum.org/v1/gonum/stat/distuv"

	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/internal/daemon"
	"github.com/abmesh/abmesh/internal/testkit"
	"github.com/abmesh/abmesh/internal/testkit/daemontest"
)

const nginxBin = "/usr/sbin/nginx"

// proxyTimeout bounds a request through nginx when abmeshd is gone: the
// auth subrequest's timeouts (100 ms connect, 200 ms read) and slack for
// a shared machine.
const proxyTimeout = 2 * time.Second

// routed is what a request through nginx reached.
type routed struct {
	status    int
	upstream  string // "control" or "treatment"
	unit      string // x-abmesh-unit the upstream received
	variant   string // x-abmesh-checkout the upstream received
	setCookie string
	took      time.Duration
}

// TestNginx runs a real nginx with auth_request in front of two upstreams
// of the service "shop" and abmeshd's forward-auth endpoint: every request
// reaches its variant's upstream with the routing headers, the minted
// cookie keeps a user on the variant, the split over 2,000 fresh users is
// within the chi-square bound of the 60/40 weights, bad input reaches the
// control unrouted, and with abmeshd stopped mid-run every request still
// goes through, to the control, within the proxy's timeout.
func TestNginx(t *testing.T) {
	if _, err := os.Stat(nginxBin); err != nil {
		t.Skipf("nginx is not installed (%s; Debian package nginx): %v", nginxBin, err)
	}
	d := daemontest.Start(t, daemontest.Edge())
	startCheckout(t, d)
	base := startNginx(t, d.EdgeAddr(), upstream(t, "control"), upstream(t, "treatment"))
	client := &http.Client{Timeout: 10 * time.Second}
	eng := d.Registry().Snapshot()

	t.Run("routes each request to its variant", func(t *testing.T) {
		first := send(t, client, base, "")
		if !assign.Minted(first.unit) || !strings.HasPrefix(first.setCookie, "abmesh_unit="+first.unit+"; Path=/;") {
			t.Fatalf("first request: unit %q, Set-Cookie %q", first.unit, first.setCookie)
		}
		want, _ := eng.HashVariant("checkout", first.unit)
		if first.variant != want || first.upstream != want {
			t.Errorf("unit %s: upstream %s saw variant %q, want %s", first.unit, first.upstream, first.variant, want)
		}
		for range 5 {
			again := send(t, client, base, "abmesh_unit="+first.unit)
			if again.unit != first.unit || again.upstream != first.upstream || again.setCookie != "" {
				t.Fatalf("repeat with the cookie: %+v, want unit %s on %s and no new cookie", again, first.unit, first.upstream)
			}
		}
	})

	t.Run("split of 2000 fresh users", func(t *testing.T) {
		const n = 2000
		counts := map[string]float64{}
		for range n {
			r := send(t, client, base, "")
			want, _ := eng.HashVariant("checkout", r.unit)
			if r.upstream != want || r.variant != want {
				t.Fatalf("unit %s reached %s with variant %q, want %s", r.unit, r.upstream, r.variant, want)
			}
			counts[r.upstream]++
		}
		chi2 := 0.0
		for name, w := range map[string]float64{"control": 0.6, "treatment": 0.4} {
			e := w * n
			chi2 += (counts[name] - e) * (counts[name] - e) / e
		}
		bound := distuv.ChiSquared{K: 1}.Quantile(0.999)
		t.Logf("control %v, treatment %v of %d; chi-square %.2f (bound %.2f at p = 0.001)", counts["control"], counts["treatment"], n, chi2, bound)
		if chi2 > bound {
			t.Errorf("chi-square %.2f over %.2f: the split is not 60/40", chi2, bound)
		}
	})

	t.Run("bad input reaches the control unrouted", func(t *testing.T) {
		r := sendWith(t, client, base, map[string]string{
			"Cookie":            "abmesh_unit=" + strings.Repeat("u", assign.MaxUnitLen+1),
			"x-abmesh-checkout": "treatment", // the client's own claim is dropped
		})
		if r.status != http.StatusOK || r.upstream != "control" || r.variant != "" || r.unit != "" || r.setCookie != "" {
			t.Errorf("over-long cookie: %+v, want the control with no routing headers", r)
		}
	})

	t.Run("fails open when abmeshd stops", func(t *testing.T) { failOpen(t, d, client, base) })
}

// failOpen sends requests as a user in treatment while abmeshd stops:
// every request answers 200 within proxyTimeout; before the stop they
// reach treatment, after it the control.
func failOpen(t *testing.T, d *daemon.Daemon, client *http.Client, base string) {
	eng := d.Registry().Snapshot()
	unit := assign.MintUnit()
	for v, _ := eng.HashVariant("checkout", unit); v != "treatment"; v, _ = eng.HashVariant("checkout", unit) {
		unit = assign.MintUnit()
	}
	type result struct {
		r     routed
		after bool // sent after Stop returned
	}
	stopped := make(chan struct{})
	results := make(chan result)
	go func() {
		defer close(results)
		for after := 0; after < 50; {
			isAfter := false
			select {
			case <-stopped:
				isAfter = true
				after++
			default:
			}
			r, err := try(client, base, map[string]string{"Cookie": "abmesh_unit=" + unit})
			if err != nil {
				r.status = -1
				r.upstream = err.Error()
			}
			results <- result{r, isAfter}
		}
	}()
	sent := 0
	for res := range results {
		sent++
		if sent == 20 {
			go func() { d.Stop(); close(stopped) }()
		}
		r := res.r
		if r.status != http.StatusOK || r.took > proxyTimeout {
			t.Errorf("request %d: status %d (%s) in %v, want 200 within %v", sent, r.status, r.upstream, r.took, proxyTimeout)
		}
		if sent < 20 && r.upstream != "treatment" {
			t.Errorf("request %d before the stop reached %s, want treatment", sent, r.upstream)
		}
		if res.after && (r.upstream != "control" || r.variant != "") {
			t.Errorf("request %d after the stop: %+v, want the control without routing headers", sent, r)
		}
	}
	t.Logf("%d requests, the last 50 after abmeshd stopped", sent)
}

// startCheckout creates and starts the 60/40 test "checkout" of "shop".
func startCheckout(t *testing.T, d *daemon.Daemon) {
	ctx := t.Context()
	x := &assign.Experiment{ID: "checkout", Owner: "team", ChangeService: "shop", MeasureService: "shop",
		Variants: []assign.Variant{{Name: "control", Weight: 60}, {Name: "treatment", Weight: 40}}, Plan: assign.Plan{MDE: 1}}
	if _, err := d.Registry().Create(ctx, x); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Registry().Start(ctx, "checkout"); err != nil {
		t.Fatal(err)
	}
}

// upstream serves name, echoing the routing headers it received.
func upstream(t *testing.T, name string) string {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Upstream", name)
		w.Header().Set("X-Seen-Unit", r.Header.Get("x-abmesh-unit"))
		w.Header().Set("X-Seen-Checkout", r.Header.Get("x-abmesh-checkout"))
		io.WriteString(w, name)
	}))
	t.Cleanup(s.Close)
	return s.Listener.Addr().String()
}

// startNginx writes testdata/nginx.conf.tmpl for these addresses into a
// temporary directory, starts nginx on it in the foreground, waits until
// it accepts connections and stops it when the test ends. It returns the
// proxy's base URL.
func startNginx(t *testing.T, edge, control, treatment string) string {
	dir := t.TempDir()
	listen := freeAddr(t)
	tmpl := template.Must(template.ParseFiles("testdata/nginx.conf.tmpl"))
	var conf bytes.Buffer
	if err := tmpl.Execute(&conf, map[string]any{"Root": os.Geteuid() == 0, "Dir": dir, "Listen": listen,
		"Edge": edge, "Control": control, "Treatment": treatment}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, conf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	// The context's cancel (last cleanup) kills what a graceful stop left.
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, nginxBin, "-p", dir, "-c", path, "-e", filepath.Join(dir, "error.log"))
	testkit.OwnProcessGroup(cmd)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGQUIT) // graceful shutdown
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			testkit.KillProcessGroup(cmd)
			<-done
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.DialTimeout("tcp", listen, 100*time.Millisecond); err == nil {
			c.Close()
			return "http://" + listen
		}
		select {
		case err := <-done:
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx exited: %v\n%s%s", err, out.String(), log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx did not listen on %s", listen)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// freeAddr returns a loopback address with a port free a moment ago.
func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// send sends GET / with cookie (none when empty) and fails the test on a
// transport error or a status other than 200.
func send(t *testing.T, c *http.Client, base, cookie string) routed {
	t.Helper()
	h := map[string]string{}
	if cookie != "" {
		h["Cookie"] = cookie
	}
	r := sendWith(t, c, base, h)
	if r.status != http.StatusOK {
		t.Fatalf("status %d", r.status)
	}
	return r
}

func sendWith(t *testing.T, c *http.Client, base string, header map[string]string) routed {
	t.Helper()
	r, err := try(c, base, header)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func try(c *http.Client, base string, header map[string]string) (routed, error) {
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, base+"/", nil)
	if err != nil {
		return routed{}, err
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	t0 := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return routed{took: time.Since(t0)}, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	r := routed{status: resp.StatusCode, upstream: resp.Header.Get("X-Upstream"), unit: resp.Header.Get("X-Seen-Unit"),
		variant: resp.Header.Get("X-Seen-Checkout"), setCookie: resp.Header.Get("Set-Cookie"), took: time.Since(t0)}
	if r.upstream != string(body) {
		return r, fmt.Errorf("upstream header %q, body %q", r.upstream, body)
	}
	return r, nil
}
