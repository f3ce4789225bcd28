package demo

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/internal/daemon"
	"github.com/abmesh/abmesh/internal/testkit"
	"github.com/abmesh/abmesh/internal/testkit/daemontest"
	"github.com/abmesh/abmesh/internal/tool/shop"
	"github.com/abmesh/abmesh/tracing"
	"github.com/abmesh/abmesh/tracing/otlp"
	"github.com/abmesh/abmesh/tracing/otlpload"
)

// writeSeedsEnv, set to 1, makes TestWriteFuzzSeeds write the fuzzers'
// seed corpora (make fuzz-seeds).
const writeSeedsEnv = "ABMESH_WRITE_FUZZ_SEEDS"

// repoRoot is the repository from this package's directory.
const repoRoot = "../../.."

// TestWriteFuzzSeeds writes every fuzzer's seed corpus
// (testdata/fuzz/FuzzXxx/ in its package) from real inputs: the OTLP
// Export requests the shop's mesh sends (real OpenTelemetry SDKs and
// otelgrpc, the abmesh SDK, OpenFeature and the edge serving the shop's
// running tests to 40 users) and those of "abmesh bench otlp"'s
// generator, captured on the wire, and what derives from them (their
// OTLP JSON, their traces' shapes, ids, services and times); the
// assignment hashes of those users in the shop's tests; the shop's
// manifests and metrics; real data sets for the CSV reader. It runs only
// with ABMESH_WRITE_FUZZ_SEEDS=1: the seeds are committed.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv(writeSeedsEnv) != "1" {
		t.Skip("set " + writeSeedsEnv + "=1 to write the fuzzers' seed corpora (make fuzz-seeds)")
	}
	reqs := captureRequests(t)
	if len(reqs) < 10 {
		t.Fatalf("captured %d requests", len(reqs))
	}
	w := seedWriter{t: t}
	var traces map[tracing.TraceID][]tracing.Span
	for i, r := range reqs {
		// Every other request of the mesh (they look alike) and each of the
		// generator's (the last six); larger inputs slow the fuzzer down.
		if len(r) <= 16<<10 && (i%2 == 0 || i >= len(reqs)-6) {
			w.add("tracing/otlp", "FuzzDecodeProto", r)
		}
		var b tracing.Batch
		if err := otlp.DecodeProto(r, &b); err != nil {
			t.Fatalf("a captured request does not decode: %v", err)
		}
		traces = groupTraces(traces, b.Spans)
	}
	for i, r := range reqs {
		if i%6 == 0 && len(r) <= 16<<10 {
			w.add("tracing/files", "FuzzDecode", otlpJSON(t, r))
		}
	}
	ids := slices.SortedFunc(func(yield func(tracing.TraceID) bool) {
		for id := range traces {
			if !yield(id) {
				return
			}
		}
	}, func(a, b tracing.TraceID) int { return bytes.Compare(a[:], b[:]) })
	for i, id := range ids {
		if i >= 24 {
			break
		}
		spans := traces[id]
		w.add("tracing", "FuzzSpanToObservation", shapeBytes(spans))
		var last []byte
		for _, s := range spans {
			last = append(last, s.SpanID[7])
		}
		w.add("tracing/otlp", "FuzzJSONRoundTrip", last, spans[0].Service, spans[0].Start.UnixNano())
	}
	writeAssignSeeds(&w)
	writeTextSeeds(&w)
	for dir, n := range w.n {
		t.Logf("%s: %d seeds", dir, n)
	}
}

// seedWriter writes seeds into packages of the repository and counts them.
type seedWriter struct {
	t *testing.T
	n map[string]int // "pkg FuzzX" → seeds
}

func (w *seedWriter) add(pkg, fuzzer string, values ...any) {
	w.t.Helper()
	if _, err := testkit.WriteFuzzSeed(filepath.Join(repoRoot, pkg), fuzzer, values...); err != nil {
		w.t.Fatal(err)
	}
	if w.n == nil {
		w.n = map[string]int{}
	}
	w.n[pkg+" "+fuzzer]++
}

// captureRequests runs the shop's mesh against abmeshd (its tests
// running, served by the SDK, OpenFeature and the edge) with the spans
// exported to a capturing OTLP server, sends 40 users' requests, then 6
// requests of "abmesh bench otlp"'s generator, and returns every Export
// request's bytes as sent.
func captureRequests(t *testing.T) [][]byte {
	ctx := context.Background()
	capt := &capture{}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(grpc.ForceServerCodec(rawCodec{}), grpc.UnknownServiceHandler(capt.handle))
	go s.Serve(lis)
	defer s.Stop()

	d := daemontest.Start(t, daemontest.Edge(), func(c *daemon.Config) { c.Edge.UnitHeader = edgeUnitHeader })
	startShop(t, d.Registry())
	m, err := StartMesh(ctx, MeshConfig{Abmeshd: d.Addr(), OTLP: lis.Addr().String(), Truth: shop.Truths(), Seed: 1,
		Logger: slog.New(slog.DiscardHandler), Ways: DefaultWays(), Edge: d.EdgeAddr()})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		grade, action := "", "view"
		if i%3 == 0 {
			grade = "vip"
		}
		if i%2 == 0 {
			action = "checkout"
		}
		if err := m.Request(ctx, "user-"+strconv.Itoa(i), grade, action, uint32(i%4)); err != nil {
			t.Fatal(err)
		}
		if i%10 == 9 { // several exports per service
			if err := m.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	m.Stop(ctx)
	for _, c := range []otlpload.Config{{TraceSize: 10, RequestSpans: 10}, {TraceSize: 3, RequestSpans: 9}, {TraceSize: 25, RequestSpans: 50}} {
		c.Endpoint, c.Duration, c.MaxSpans, c.Concurrency, c.Connections = lis.Addr().String(), 10*time.Second, int64(2*c.RequestSpans), 1, 1
		if _, err := otlpload.Run(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	return capt.requests()
}

// capture keeps the bytes of every request it answers; its answer is an
// empty ExportTraceServiceResponse (zero bytes).
type capture struct {
	mu   sync.Mutex
	reqs [][]byte
}

func (c *capture) handle(_ any, stream grpc.ServerStream) error {
	var b []byte
	if err := stream.RecvMsg(&b); err != nil {
		return err
	}
	c.mu.Lock()
	c.reqs = append(c.reqs, b)
	c.mu.Unlock()
	return stream.SendMsg(&[]byte{})
}

func (c *capture) requests() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.reqs)
}

// rawCodec hands a server the bytes of a message and sends bytes as they are.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return *v.(*[]byte), nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	*v.(*[]byte) = slices.Clone(data)
	return nil
}
func (rawCodec) Name() string { return "proto" }

// groupTraces adds spans to traces by trace id.
func groupTraces(traces map[tracing.TraceID][]tracing.Span, spans []tracing.Span) map[tracing.TraceID][]tracing.Span {
	if traces == nil {
		traces = map[tracing.TraceID][]tracing.Span{}
	}
	for _, s := range spans {
		traces[s.TraceID] = append(traces[s.TraceID], s)
	}
	return traces
}

// b64ID finds the base64 ids protojson writes, to rewrite them in hex as
// OTLP JSON has them.
var b64ID = regexp.MustCompile(`"(traceId|spanId|parentSpanId)":\s*"([^"]*)"`)

// otlpJSON returns an Export request as an OTLP JSON file (TracesData,
// hex ids), as the Collector's file exporter writes it.
func otlpJSON(t *testing.T, req []byte) []byte {
	var r collectortrace.ExportTraceServiceRequest
	if err := proto.Unmarshal(req, &r); err != nil {
		t.Fatal(err)
	}
	js, err := protojson.Marshal(&tracepb.TracesData{ResourceSpans: r.ResourceSpans})
	if err != nil {
		t.Fatal(err)
	}
	return b64ID.ReplaceAllFunc(js, func(m []byte) []byte {
		sub := b64ID.FindSubmatch(m)
		raw, err := base64.StdEncoding.DecodeString(string(sub[2]))
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Appendf(nil, "%q:%q", sub[1], hex.EncodeToString(raw))
	})
}

// shapeBytes encodes a trace's shape as FuzzSpanToObservation reads its
// input (tracing's fuzzSpans): three bytes a span — its id, its parent's
// id (0 for a root) and a byte x whose x%6 is the span kind and x%5 the
// service (numbered in order of appearance) — ids being positions in
// the trace from 1.
func shapeBytes(spans []tracing.Span) []byte {
	pos := map[tracing.SpanID]int{}
	svc := map[string]int{}
	for i, s := range spans {
		pos[s.SpanID] = i + 1
		if _, ok := svc[s.Service]; !ok {
			svc[s.Service] = len(svc)
		}
	}
	var out []byte
	for i, s := range spans {
		x := 0
		for x%6 != int(s.Kind)%6 || x%5 != svc[s.Service]%5 {
			x++
		}
		out = append(out, byte(i+1), byte(pos[s.ParentID]), byte(x))
	}
	return out
}

// writeAssignSeeds writes FuzzBucket's seeds — the hashes of the users
// of the capture in each shop test, in pairs, and the test's weight
// total or the layer bucket count — and FuzzMetricRoundTrip's, the shop's
// and the bench manifests' metrics.
func writeAssignSeeds(w *seedWriter) {
	set, err := shop.Manifest()
	if err != nil {
		w.t.Fatal(err)
	}
	for i, x := range set.Experiments {
		var total uint32
		for _, v := range x.Variants {
			total += v.Weight
		}
		u1, u2 := "user-"+strconv.Itoa(i), "user-"+strconv.Itoa(i+20)
		w.add("assign", "FuzzBucket", assign.Hash(x.EffectiveSalt(), u1), assign.Hash(x.EffectiveSalt(), u2), total)
		if x.Layer != "" {
			w.add("assign", "FuzzBucket", assign.Hash(x.Layer, u1), assign.Hash(x.Layer, u2), uint32(assign.LayerBuckets))
		}
		w.add("assign", "FuzzMetricRoundTrip", int(x.Metric.Kind), x.Metric.Attribute)
	}
}

// writeTextSeeds writes FuzzParse's seeds — each document of the shop's
// manifests alone, and the bench manifest — and FuzzReadCSV's: the R data
// sets of analysis/testdata with their columns named as the fuzzer reads
// them (y, a, b).
func writeTextSeeds(w *seedWriter) {
	for _, f := range []string{"internal/tool/shop/layers.yaml", "internal/tool/shop/experiments.yaml", "examples/bench/experiments.yaml"} {
		b, err := os.ReadFile(filepath.Join(repoRoot, f))
		if err != nil {
			w.t.Fatal(err)
		}
		w.add("internal/adapter/manifest", "FuzzParse", b)
		for _, doc := range bytes.Split(b, []byte("\n---\n")) {
			w.add("internal/adapter/manifest", "FuzzParse", doc)
		}
	}
	for f, header := range map[string]string{"toothgrowth.csv": "len,supp,dose", "warpbreaks.csv": "breaks,wool,tension", "empty_cell.csv": "y,a,b"} {
		b, err := os.ReadFile(filepath.Join(repoRoot, "analysis/testdata/anova", f))
		if err != nil {
			w.t.Fatal(err)
		}
		s, ok := bytes.CutPrefix(b, []byte(header+"\n"))
		if !ok {
			w.t.Fatalf("%s does not start with %s", f, header)
		}
		w.add("analysis", "FuzzReadCSV", "y,a,b\n"+string(s))
	}
}
