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
	"time"

	"gonum.org/v1/gonum/stat/distuv"

	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/internal/daemon"
	"github.com/abmesh/abmesh/internal/testkit"
	"github.com/abmesh/abmesh/internal/testkit/daemontest"
)

// proxyTimeout bounds a request through a proxy when abmeshd is gone:
// the proxies' timeouts for the auth call (100–200 ms) and slack for a
// shared machine.
const proxyTimeout = 2 * time.Second

// edgeTest is the test a proxy routes on: 60% control, 40% other, of
// service.
type edgeTest struct{ id, service, other string }

// routed is what a request through a proxy reached.
type routed struct {
	status    int
	upstream  string // the variant whose upstream answered
	unit      string // x-abmesh-unit the upstream received
	variant   string // x-abmesh-<test> the upstream received
	setCookie string
	took      time.Duration
}

// proxyRun is a proxy in front of two upstreams of an edgeTest, with
// abmeshd's forward-auth endpoint.
type proxyRun struct {
	d      *daemon.Daemon
	test   edgeTest
	base   string // the proxy's URL
	client *http.Client
}

// startEdge starts abmeshd with the edge endpoint and tt running, and the
// control's and the other variant's upstreams; start starts the proxy in
// front of them (edge, control and other addresses) and returns its URL.
func startEdge(t *testing.T, tt edgeTest, start func(edge, control, other string) string) *proxyRun {
	d := daemontest.Start(t, daemontest.Edge())
	startTest(t, d, tt)
	base := start(d.EdgeAddr(), upstream(t, "control", tt.id), upstream(t, tt.other, tt.id))
	return &proxyRun{d: d, test: tt, base: base, client: &http.Client{Timeout: 10 * time.Second}}
}

// startTest creates and starts tt in d.
func startTest(t *testing.T, d *daemon.Daemon, tt edgeTest) {
	x := &assign.Experiment{ID: tt.id, Owner: "team", ChangeService: tt.service, MeasureService: tt.service,
		Variants: []assign.Variant{{Name: "control", Weight: 60}, {Name: tt.other, Weight: 40}}, Plan: assign.Plan{MDE: 1}}
	if _, err := d.Registry().Create(t.Context(), x); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Registry().Start(t.Context(), tt.id); err != nil {
		t.Fatal(err)
	}
}

// checkProxy runs the checks every proxy configuration must pass: each
// request reaches its variant's upstream with the routing headers, the
// minted cookie keeps a user on the variant, the split over 2,000 fresh
// users is within the chi-square bound of the 60/40 weights, bad input
// reaches the control unrouted, and with abmeshd stopped mid-run every
// request still goes through, to the control, within the proxy's timeout.
func checkProxy(t *testing.T, p *proxyRun) {
	eng := p.d.Registry().Snapshot()
	want := func(unit string) string { v, _ := eng.HashVariant(p.test.id, unit); return v }

	t.Run("routes each request to its variant", func(t *testing.T) {
		first := p.send(t, nil)
		if !assign.Minted(first.unit) || !strings.HasPrefix(first.setCookie, "abmesh_unit="+first.unit+"; Path=/;") {
			t.Fatalf("first request: unit %q, Set-Cookie %q", first.unit, first.setCookie)
		}
		if w := want(first.unit); first.variant != w || first.upstream != w {
			t.Errorf("unit %s: upstream %s saw variant %q, want %s", first.unit, first.upstream, first.variant, w)
		}
		for range 5 {
			again := p.send(t, map[string]string{"Cookie": "a=b; abmesh_unit=" + first.unit})
			if again.unit != first.unit || again.upstream != first.upstream || again.setCookie != "" {
				t.Fatalf("repeat with the cookie: %+v, want unit %s on %s and no new cookie", again, first.unit, first.upstream)
			}
		}
	})

	t.Run("split of 2000 fresh users", func(t *testing.T) {
		const n = 2000
		counts := map[string]float64{}
		for range n {
			r := p.send(t, nil)
			if w := want(r.unit); r.upstream != w || r.variant != w {
				t.Fatalf("unit %s reached %s with variant %q, want %s", r.unit, r.upstream, r.variant, w)
			}
			counts[r.upstream]++
		}
		chi2 := 0.0
		for name, w := range map[string]float64{"control": 0.6, p.test.other: 0.4} {
			e := w * n
			chi2 += (counts[name] - e) * (counts[name] - e) / e
		}
		bound := distuv.ChiSquared{K: 1}.Quantile(0.999)
		t.Logf("%v of %d; chi-square %.2f (bound %.2f at p = 0.001)", counts, n, chi2, bound)
		if chi2 > bound {
			t.Errorf("chi-square %.2f over %.2f: the split is not 60/40", chi2, bound)
		}
	})

	t.Run("bad input reaches the control unrouted", func(t *testing.T) {
		r := p.send(t, map[string]string{
			"Cookie":                     "abmesh_unit=" + strings.Repeat("u", assign.MaxUnitLen+1),
			assign.HeaderName(p.test.id): p.test.other, // the client's own claim is dropped
		})
		if r.upstream != "control" || r.variant != "" || r.unit != "" || r.setCookie != "" {
			t.Errorf("over-long cookie: %+v, want the control with no routing headers", r)
		}
	})

	t.Run("fails open when abmeshd stops", func(t *testing.T) { p.failOpen(t) })
}

// failOpen sends requests as a user in the other variant while abmeshd
// stops: every request answers 200 within proxyTimeout; before the stop
// they reach the other variant, after it the control.
func (p *proxyRun) failOpen(t *testing.T) {
	eng := p.d.Registry().Snapshot()
	unit := assign.MintUnit()
	for v, _ := eng.HashVariant(p.test.id, unit); v != p.test.other; v, _ = eng.HashVariant(p.test.id, unit) {
		unit = assign.MintUnit()
	}
	type result struct {
		r     routed
		err   error
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
			r, err := p.try(map[string]string{"Cookie": "abmesh_unit=" + unit})
			results <- result{r, err, isAfter}
		}
	}()
	sent := 0
	for res := range results {
		sent++
		if sent == 20 {
			go func() { p.d.Stop(); close(stopped) }()
		}
		r := res.r
		if res.err != nil || r.status != http.StatusOK || r.took > proxyTimeout {
			t.Errorf("request %d: status %d (%v) in %v, want 200 within %v", sent, r.status, res.err, r.took, proxyTimeout)
		}
		if sent < 20 && r.upstream != p.test.other {
			t.Errorf("request %d before the stop reached %s, want %s", sent, r.upstream, p.test.other)
		}
		if res.after && (r.upstream != "control" || r.variant != "") {
			t.Errorf("request %d after the stop: %+v, want the control without routing headers", sent, r)
		}
	}
	t.Logf("%d requests, the last 50 after abmeshd stopped", sent)
}

// upstream serves the variant name, echoing the routing headers of test it
// received.
func upstream(t *testing.T, name, test string) string {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Upstream", name)
		w.Header().Set("X-Seen-Unit", r.Header.Get("x-abmesh-unit"))
		w.Header().Set("X-Seen-Variant", r.Header.Get(assign.HeaderName(test)))
		io.WriteString(w, name)
	}))
	t.Cleanup(s.Close)
	return s.Listener.Addr().String()
}

// send sends GET / with header and fails the test on a transport error or
// a status other than 200.
func (p *proxyRun) send(t *testing.T, header map[string]string) routed {
	t.Helper()
	r, err := p.try(header)
	if err != nil {
		t.Fatal(err)
	}
	if r.status != http.StatusOK {
		t.Fatalf("status %d", r.status)
	}
	return r
}

func (p *proxyRun) try(header map[string]string) (routed, error) {
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, p.base+"/", nil)
	if err != nil {
		return routed{}, err
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	t0 := time.Now()
	resp, err := p.client.Do(req)
	if err != nil {
		return routed{took: time.Since(t0)}, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	r := routed{status: resp.StatusCode, upstream: resp.Header.Get("X-Upstream"), unit: resp.Header.Get("X-Seen-Unit"),
		variant: resp.Header.Get("X-Seen-Variant"), setCookie: resp.Header.Get("Set-Cookie"), took: time.Since(t0)}
	if r.upstream != string(body) {
		return r, fmt.Errorf("upstream header %q, body %q", r.upstream, body)
	}
	return r, nil
}

// startProxy starts a proxy's command in the foreground, waits until it
// accepts connections on listen and stops it (SIGTERM, then a kill) when
// the test ends. logs reads its logs for a failure message.
func startProxy(t *testing.T, listen string, logs func() string, name string, args ...string) {
	// The context's cancel (the last cleanup) kills what a stop left.
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, name, args...)
	testkit.OwnProcessGroup(cmd)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
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
			return
		}
		select {
		case err := <-done:
			t.Fatalf("%s exited: %v\n%s%s", name, err, out.String(), logs())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not listen on %s", name, listen)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// writeConfig writes text to dir/name, after replacing each old string of
// the pairs in replace by its new one (each must occur), and returns the
// path.
func writeConfig(t *testing.T, dir, name, text string, replace ...string) string {
	for i := 0; i+1 < len(replace); i += 2 {
		if !strings.Contains(text, replace[i]) {
			t.Fatalf("%s: no %q to replace", name, replace[i])
		}
		text = strings.ReplaceAll(text, replace[i], replace[i+1])
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
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
