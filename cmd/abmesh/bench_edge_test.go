package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/abmesh/abmesh/assign"
)

// TestBenchEdge: bench edge sends paced GETs, no more than rate ×
// duration, with minted-form unit cookies for returning users and none
// for the fresh share.
func TestBenchEdge(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{}
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		c, err := r.Cookie("uid")
		switch {
		case err != nil:
			seen["fresh"]++
		case assign.Minted(c.Value):
			seen["minted"]++
		default:
			seen["other"]++
		}
	}))
	defer s.Close()
	var out bytes.Buffer
	err := run(context.Background(), []string{"bench", "edge", "--url", s.URL + "/edge/v1/assign?service=shop", "--duration", "500ms",
		"--rate", "200", "--concurrency", "4", "--fresh", "0.5", "--cookie", "uid", "-o", "json"}, &out, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var res loadResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	if res.Errors != 0 || res.Requests < 10 || res.Requests > 100 {
		t.Errorf("%d requests, %d errors; want at most 200/s × 0.5 s = 100 and none failed", res.Requests, res.Errors)
	}
	if seen["fresh"] == 0 || seen["minted"] == 0 || seen["other"] != 0 {
		t.Errorf("requests seen %v: want fresh and minted-cookie ones only", seen)
	}
	if err := run(context.Background(), []string{"bench", "edge", "--url", s.URL, "--fresh", "2"}, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "--fresh") {
		t.Errorf("--fresh 2: %v", err)
	}
}
