package main

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/abmesh/abmesh/internal/daemon"
)

// benchEdgeCmd loads an HTTP URL the way a proxy's users load the
// forward-auth endpoint: GET with the unit cookie of one of --units
// returning users, or without a cookie for a --fresh share of new users.
// Pointed at abmeshd's --edge-listen it measures the edge call itself;
// pointed at a proxy with and without auth_request, what the call adds.
func benchEdgeCmd(fs *flag.FlagSet) body {
	url := fs.String("url", "http://127.0.0.1:7090/edge/v1/assign?service=frontend", "the URL to GET: abmeshd's forward-auth endpoint, or a proxy in front of it")
	dur := fs.Duration("duration", 10*time.Second, "how long to send load (bounded)")
	rate := fs.Int("rate", 5000, "requests per second, paced (0: each caller sends again as soon as it has its answer)")
	conc := fs.Int("concurrency", 64, "concurrent callers (connections)")
	units := fs.Int("units", 100000, "distinct returning users, each with a minted-form unit cookie")
	fresh := fs.Float64("fresh", 0.1, "share of requests without a cookie (new users, who get a minted unit)")
	cookie := fs.String("cookie", "abmesh_unit", "the unit cookie's name (abmeshd --edge-unit-cookie)")
	out := outputFlag(fs, "table", "json")
	return func(ctx context.Context, r *request) error {
		if err := r.noArgs(); err != nil {
			return err
		}
		if *dur <= 0 || *dur > 10*time.Minute {
			return errors.New("--duration: want between 0 and 10m")
		}
		if *conc < 1 || *units < 1 || *rate < 0 || *fresh < 0 || *fresh > 1 {
			return errors.New("--concurrency and --units must be positive, --rate not negative, --fresh in [0, 1]")
		}
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *conc, DisableCompression: true}}
		defer client.CloseIdleConnections()
		cookies := unitCookies(*cookie, *units)
		get := func(ctx context.Context, rng *rand.Rand) error {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, *url, nil)
			if err != nil {
				return err
			}
			if rng.Float64() >= *fresh {
				req.Header["Cookie"] = []string{cookies[rng.IntN(len(cookies))]}
			}
			if r.token != "" { // abmeshd's client role, as a proxy sends it
				req.Header[daemon.EdgeTokenHeader] = []string{r.token}
			}
			resp, err := client.Do(req)
			if err != nil {
				return err
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("%s: %s", *url, resp.Status)
			}
			return nil
		}
		if err := get(ctx, rand.New(rand.NewPCG(0, 0))); err != nil { // is it there at all?
			return err
		}
		fmt.Fprintf(r.stderr, "sending GET %s at %d/s for %s with %d callers...\n", *url, *rate, *dur, *conc)
		res := runLoad(ctx, loadShape{Duration: *dur, Concurrency: *conc, Rate: *rate}, func(ctx context.Context, _ int, rng *rand.Rand) error { return get(ctx, rng) })
		if *out == "json" {
			return printPlainJSON(r.stdout, res)
		}
		printLoad(r.stdout, "GET", res)
		return nil
	}
}

// unitCookies returns n Cookie header values "name=u-<32 hex>", the form
// of units abmeshd mints (deterministic: the same users every run).
func unitCookies(name string, n int) []string {
	rng := rand.New(rand.NewPCG(1, 2))
	out := make([]string, n)
	var b [16]byte
	for i := range out {
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		out[i] = name + "=u-" + hex.EncodeToString(b[:])
	}
	return out
}
