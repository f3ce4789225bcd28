package jaeger

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/abmesh/abmesh/tracing"
	model "github.com/jaegertracing/jaeger-idl/model/v1"
	api "github.com/jaegertracing/jaeger-idl/proto-gen/api_v2"
)

// Sink takes converted batches; *tracing.Assembler is one. tracing.ErrFull
// means nothing of the batch was taken.
type Sink interface {
	Add(b *tracing.Batch) (tracing.AddResult, error)
}

// ReaderConfig configures a Reader. The zero value of each field means its
// default.
type ReaderConfig struct {
	// Services to query; empty means every service GetServices lists, on
	// every poll.
	Services []string
	// PollInterval is the time between polls in Run. Default 30s.
	PollInterval time.Duration
	// Lookback is the width of the start-time window each poll searches:
	// [now-Settle-Lookback, now-Settle]. Default 2 × PollInterval, so each
	// trace is seen by two polls (the second is deduplicated).
	Lookback time.Duration
	// Settle leaves traces that started less than this long ago to a later
	// poll, so that they are complete when read. Default 10s.
	Settle time.Duration
	// SearchDepth is the most traces FindTraces returns per service per
	// poll. Default 1000.
	SearchDepth int
	// SeenTraces is how many trace ids are remembered to skip traces
	// already read. Default 100,000.
	SeenTraces int
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Logger receives Run's poll errors; default slog.Default().
	Logger *slog.Logger
}

func (c *ReaderConfig) setDefaults() {
	if c.PollInterval == 0 {
		c.PollInterval = 30 * time.Second
	}
	if c.Lookback == 0 {
		c.Lookback = 2 * c.PollInterval
	}
	if c.Settle == 0 {
		c.Settle = 10 * time.Second
	}
	if c.SearchDepth == 0 {
		c.SearchDepth = 1000
	}
	if c.SeenTraces == 0 {
		c.SeenTraces = 100_000
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate reports fields out of range (after defaults): negative
// durations or counts, a Lookback shorter than PollInterval (traces would
// be missed between polls), empty service names.
func (c ReaderConfig) Validate() error {
	c.setDefaults()
	var errs []error
	if c.PollInterval < 0 || c.Settle < 0 {
		errs = append(errs, fmt.Errorf("PollInterval %v and Settle %v must be > 0", c.PollInterval, c.Settle))
	}
	if c.Lookback < c.PollInterval {
		errs = append(errs, fmt.Errorf("Lookback %v is shorter than PollInterval %v: traces would be missed", c.Lookback, c.PollInterval))
	}
	if c.SearchDepth < 0 || c.SeenTraces < 0 {
		errs = append(errs, fmt.Errorf("SearchDepth %d and SeenTraces %d must be > 0", c.SearchDepth, c.SeenTraces))
	}
	for i, s := range c.Services {
		if s == "" {
			errs = append(errs, fmt.Errorf("Services[%d] is empty", i))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("jaeger reader config: %w", errors.Join(errs...))
	}
	return nil
}

// Reader polls a Jaeger query service: FindTraces over a sliding window
// for each service, whole new traces into a Sink (already-read traces are
// skipped), and GetDependencies into a Graph. It is safe for concurrent
// use, though polls are serialized.
type Reader struct {
	client api.QueryServiceClient
	sink   Sink
	graph  *tracing.Graph
	cfg    ReaderConfig

	mu       sync.Mutex // serializes polls
	seen     seenSet
	depsFrom time.Time
	total    PollResult
}

// NewReader returns a Reader. graph may be nil (no dependencies are read).
// client's calls are made with CallOption, so any connection works.
func NewReader(client api.QueryServiceClient, sink Sink, graph *tracing.Graph, cfg ReaderConfig) (*Reader, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	return &Reader{client: client, sink: sink, graph: graph, cfg: cfg, seen: newSeenSet(cfg.SeenTraces)}, nil
}

// PollResult counts what polls did.
type PollResult struct {
	Services   int // services queried
	Traces     int // new traces added to the sink
	Spans      int // spans in those traces
	Rejected   int // of those spans, rejected by the sink (malformed or late)
	Duplicates int // traces skipped as already read
	Refused    int // traces the sink refused as full (read again by a later poll)
	Links      int // dependency links merged into the graph
}

func (p *PollResult) add(q PollResult) {
	p.Services += q.Services
	p.Traces += q.Traces
	p.Spans += q.Spans
	p.Rejected += q.Rejected
	p.Duplicates += q.Duplicates
	p.Refused += q.Refused
	p.Links += q.Links
}

// Totals returns the sums over all polls so far.
func (r *Reader) Totals() PollResult {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.total
}

// Run polls now and then every PollInterval until ctx is done, logging
// poll errors; it returns nil when ctx is canceled.
func (r *Reader) Run(ctx context.Context) error {
	t := time.NewTicker(r.cfg.PollInterval)
	defer t.Stop()
	for {
		if _, err := r.Poll(ctx); err != nil && ctx.Err() == nil {
			r.cfg.Logger.Warn("jaeger poll", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Poll runs one poll. Traces the sink refuses as full stop the poll
// without error (they are read again while they stay in the window).
// The error joins every failed call; what succeeded is still counted.
func (r *Reader) Poll(ctx context.Context) (PollResult, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var res PollResult
	defer func() { r.total.add(res) }()

	now := r.cfg.Now()
	services := r.cfg.Services
	if len(services) == 0 {
		resp, err := r.client.GetServices(ctx, &api.GetServicesRequest{}, CallOption())
		if err != nil {
			return res, fmt.Errorf("jaeger GetServices: %w", err)
		}
		services = resp.Services
	}
	var errs []error
	end := now.Add(-r.cfg.Settle)
	start := end.Add(-r.cfg.Lookback)
	full := false
	for _, svc := range services {
		if full {
			break
		}
		res.Services++
		full = r.pollService(ctx, svc, start, end, &res, &errs)
	}
	if r.graph != nil {
		from := r.depsFrom
		if from.IsZero() {
			from = now.Add(-r.cfg.Lookback)
		}
		resp, err := r.client.GetDependencies(ctx, &api.GetDependenciesRequest{StartTime: from, EndTime: now}, CallOption())
		if err != nil {
			errs = append(errs, fmt.Errorf("jaeger GetDependencies: %w", err))
		} else {
			links := make([]tracing.Edge, 0, len(resp.Dependencies))
			for _, d := range resp.Dependencies {
				links = append(links, tracing.Edge{Caller: d.Parent, Callee: d.Child, Calls: d.CallCount})
			}
			r.graph.Merge(now, links)
			res.Links += len(links)
			r.depsFrom = now
		}
	}
	return res, errors.Join(errs...)
}

// pollService reads one service's traces; it returns true when the sink
// is full.
func (r *Reader) pollService(ctx context.Context, svc string, start, end time.Time, res *PollResult, errs *[]error) bool {
	stream, err := r.client.FindTraces(ctx, &api.FindTracesRequest{Query: &api.TraceQueryParameters{
		ServiceName: svc, StartTimeMin: start, StartTimeMax: end, SearchDepth: int32(r.cfg.SearchDepth),
	}}, CallOption())
	if err != nil {
		*errs = append(*errs, fmt.Errorf("jaeger FindTraces %q: %w", svc, err))
		return false
	}
	var order []model.TraceID
	traces := map[model.TraceID][]model.Span{}
	for {
		chunk, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			*errs = append(*errs, fmt.Errorf("jaeger FindTraces %q: %w", svc, err))
			break // add the traces read so far
		}
		for _, s := range chunk.Spans {
			if _, ok := traces[s.TraceID]; !ok {
				order = append(order, s.TraceID)
			}
			traces[s.TraceID] = append(traces[s.TraceID], s)
		}
	}
	var b tracing.Batch
	for _, id := range order {
		if r.seen.has(id) {
			res.Duplicates++
			continue
		}
		b.Reset()
		Convert(traces[id], &b)
		added, err := r.sink.Add(&b)
		if errors.Is(err, tracing.ErrFull) {
			res.Refused++
			return true
		}
		if errors.Is(err, tracing.ErrTooLarge) {
			// Never acceptable: counted by the sink, skipped for good.
			r.seen.add(id)
			res.Rejected += b.Len()
			continue
		}
		if err != nil {
			*errs = append(*errs, fmt.Errorf("add trace %s: %w", TraceIDString(id), err))
			return true
		}
		r.seen.add(id)
		res.Traces++
		res.Spans += b.Len()
		res.Rejected += added.RejectedSpans()
	}
	return false
}

// seenSet remembers the last n trace ids read; it grows as ids come.
type seenSet struct {
	n    int
	ring []model.TraceID
	next int
	set  map[model.TraceID]struct{}
}

func newSeenSet(n int) seenSet {
	return seenSet{n: n, set: make(map[model.TraceID]struct{})}
}

func (s *seenSet) has(id model.TraceID) bool {
	_, ok := s.set[id]
	return ok
}

func (s *seenSet) add(id model.TraceID) {
	if s.n == 0 || s.has(id) {
		return
	}
	if len(s.ring) < s.n {
		s.ring = append(s.ring, id)
	} else {
		delete(s.set, s.ring[s.next])
		s.ring[s.next] = id
		s.next = (s.next + 1) % len(s.ring)
	}
	s.set[id] = struct{}{}
}
