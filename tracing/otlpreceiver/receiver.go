package otlpreceiver

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/abmesh/abmesh/tracing"
	"github.com/abmesh/abmesh/tracing/otlp"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Sink takes converted batches; *tracing.Assembler is one. Add must follow
// the Assembler's contract: tracing.ErrFull means nothing of the batch was
// taken; tracing.ErrClosed means it never will be.
type Sink interface {
	Add(b *tracing.Batch) (tracing.AddResult, error)
}

// RoomSink is a Sink that tells, before a request is read and decoded,
// whether it could take spans more spans (0: any at all); it returns
// tracing.ErrFull or tracing.ErrClosed as Add would. *tracing.Assembler
// is one. A receiver whose sink is a RoomSink refuses a request the sink
// has no room for (RESOURCE_EXHAUSTED with RetryInfo) before reading it,
// and again before decoding it once its span count is known, so that a
// client ignoring the retry delay costs a refusal, not a decode.
type RoomSink interface {
	Sink
	CheckRoom(spans int) error
}

// LimitedSink is a Sink with span limits (what it keeps of one span);
// the receiver decodes under them. *tracing.Assembler is one.
type LimitedSink interface {
	SpanLimits() tracing.SpanLimits
}

// Option configures a Receiver.
type Option interface{ apply(*Receiver) }

type optionFunc func(*Receiver)

func (f optionFunc) apply(r *Receiver) { f(r) }

// WithRetryDelay sets the RetryInfo delay sent with RESOURCE_EXHAUSTED
// (default 1s). OpenTelemetry exporters retry a RESOURCE_EXHAUSTED only
// when it carries a RetryInfo, and wait at least this long.
func WithRetryDelay(d time.Duration) Option {
	return optionFunc(func(r *Receiver) { r.retryDelay = d })
}

// Journal makes accepted requests durable before they are
// acknowledged; *wal.Log (internal/wal) is one. Append copies a request's
// wire bytes and returns its record's seq (an error refuses the
// request); Done or Abort follow once the sink took the batch or refused
// it; Wait returns once the record is durable.
type Journal interface {
	Append(data []byte) (uint64, error)
	Done(seq uint64)
	Abort(seq uint64)
	Wait(ctx context.Context, seq uint64) error
}

// WithJournal makes the receiver append each request's bytes to j before
// handing its spans to the sink (Batch.Seq is the record's seq), and
// acknowledge it only once j says it is durable. An Append error that
// full reports true is answered RESOURCE_EXHAUSTED with RetryInfo
// (nothing of the request taken); any other journal error UNAVAILABLE.
// Only the handler of Register journals; Export (RegisterTyped) does not.
func WithJournal(j Journal, full func(error) bool) Option {
	return optionFunc(func(r *Receiver) { r.journal, r.journalFull = j, full })
}

// Receiver implements the OTLP TraceService. It is safe for concurrent use.
//
// Registered with Register, it admits a request before reading it: the
// request reserves Limits.MaxMessageBytes of the Limits.MaxInflightBytes
// budget, waiting at most 100ms, or is refused (RESOURCE_EXHAUSTED with
// RetryInfo) without its bytes being read; once read, its reservation becomes its
// charge — its wire bytes plus DecodedSpanBytes for each span, counted
// from the wire before anything is decoded — and it is decoded only if
// that fits (a request whose charge alone exceeds the budget is
// INVALID_ARGUMENT). The budget is returned when the request is answered.
// So the memory of requests being read and decoded stays near the budget,
// whatever the concurrency; requests waiting for admission hold at most
// the stream window of Limits.ServerOptions each.
type Receiver struct {
	collectortrace.UnimplementedTraceServiceServer

	sink       Sink
	retryDelay time.Duration
	limits     Limits
	adm        *admission
	batches    sync.Pool

	journal     Journal
	journalFull func(error) bool
	spanLimits  tracing.SpanLimits

	requests, refused, refusedInflight, refusedFull, journalRefused, spans atomic.Uint64
}

var _ collectortrace.TraceServiceServer = (*Receiver)(nil)

// New returns a Receiver adding spans to sink.
func New(sink Sink, opts ...Option) *Receiver {
	r := &Receiver{sink: sink, retryDelay: time.Second}
	for _, o := range opts {
		o.apply(r)
	}
	r.limits.defaults()
	r.adm = newAdmission(r.limits)
	if l, ok := sink.(LimitedSink); ok {
		r.spanLimits = l.SpanLimits()
	}
	r.batches.New = func() any { return &tracing.Batch{Limits: r.spanLimits} }
	return r
}

// Register registers a new Receiver for sink on s as the OTLP
// TraceService and returns it. Build s with the options of the same
// Limits' ServerOptions (WithLimits; the defaults otherwise).
//
// The registered handler admits each request before reading it (see
// Receiver) and decodes it with otlp.DecodeProto, straight from the wire
// bytes, about four times faster than generated messages; the results are
// the same as Export's. A unary server interceptor on s sees the request
// as a message that is not an ExportTraceServiceRequest.
func Register(s *grpc.Server, sink Sink, opts ...Option) *Receiver {
	r := New(sink, opts...)
	s.RegisterService(&rawServiceDesc, r)
	return r
}

// RegisterTyped registers r on s through the generated service
// description, so that interceptors see ExportTraceServiceRequest
// messages; decoding is slower than with Register, and gRPC decodes each
// request before the receiver sees it: it has no admission.
func RegisterTyped(s *grpc.Server, sink Sink, opts ...Option) *Receiver {
	r := New(sink, opts...)
	collectortrace.RegisterTraceServiceServer(s, r)
	return r
}

// rawServiceDesc is the TraceService with a handler that takes the raw
// request bytes.
var rawServiceDesc = grpc.ServiceDesc{
	ServiceName: "opentelemetry.proto.collector.trace.v1.TraceService",
	HandlerType: (*rawExporter)(nil),
	Methods:     []grpc.MethodDesc{{MethodName: "Export", Handler: rawExportHandler}},
	Streams:     []grpc.StreamDesc{},
	Metadata:    "opentelemetry/proto/collector/trace/v1/trace_service.proto",
}

type rawExporter interface {
	admit(ctx context.Context) (int64, error)
	exportRaw(ctx context.Context, req *rawRequest, held int64) (*collectortrace.ExportTraceServiceResponse, error)
	release(held int64)
}

// rawExportHandler admits the request before gRPC reads it (dec), then
// exports it; the reservation is returned however the call ends. A call
// refused before it is read still passes through the interceptor (with
// an empty request), so that what observes calls sees it.
func rawExportHandler(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
	x := srv.(rawExporter)
	in := new(rawRequest)
	held, err := x.admit(ctx)
	if err == nil {
		if err = dec(in); err != nil {
			x.release(held)
		}
	}
	taken := false // exportRaw took the reservation and the request
	defer func() {
		if err == nil && !taken {
			in.free()
			x.release(held)
		}
	}()
	handler := func(ctx context.Context, req any) (any, error) {
		if err != nil {
			return nil, err
		}
		taken = true
		return x.exportRaw(ctx, req.(*rawRequest), held)
	}
	if interceptor == nil {
		return handler(ctx, in)
	}
	info := &grpc.UnaryServerInfo{Server: srv, FullMethod: collectortrace.TraceService_Export_FullMethodName}
	return interceptor(ctx, in, info, handler)
}

// admit reserves the budget of a request about to be read, unless the
// sink is full.
func (r *Receiver) admit(ctx context.Context) (int64, error) {
	r.requests.Add(1)
	if err := r.checkRoom(0); err != nil {
		return 0, err
	}
	held, err := r.adm.reserve(ctx)
	if err != nil {
		r.refusedInflight.Add(1)
		return 0, r.exhausted("abmesh OTLP receiver: " + err.Error() + "; retry later")
	}
	return held, nil
}

func (r *Receiver) release(held int64) { r.adm.release(held) }

// checkRoom refuses a request of spans spans (0: not yet known) when
// the sink says it has no room for them.
func (r *Receiver) checkRoom(spans int) error {
	s, ok := r.sink.(RoomSink)
	if !ok {
		return nil
	}
	switch err := s.CheckRoom(spans); {
	case errors.Is(err, tracing.ErrFull):
		r.refused.Add(1)
		r.refusedFull.Add(1)
		return r.exhausted("abmesh trace assembler is full; retry later")
	case errors.Is(err, tracing.ErrClosed):
		r.refused.Add(1)
		return status.Error(codes.Unavailable, "abmesh trace assembler is shutting down")
	}
	return nil
}

// exportRaw is Export for a request as received (rawRequest), holding a
// reservation of held bytes, which it resizes to the request's charge
// before decoding and returns when done.
func (r *Receiver) exportRaw(ctx context.Context, req *rawRequest, held int64) (*collectortrace.ExportTraceServiceResponse, error) {
	defer req.free()
	wire := req.len()
	data, pooled := req.takeBytes(mem.DefaultBufferPool())
	if pooled {
		defer mem.DefaultBufferPool().Put(data)
	}
	n, err := otlp.CountProtoSpans(*data)
	if err != nil {
		r.adm.release(held)
		return nil, status.Errorf(codes.InvalidArgument, "request: %v", err)
	}
	if n > 0 {
		if err := r.checkRoom(n); err != nil {
			r.adm.release(held)
			return nil, err
		}
	}
	need := int64(wire) + int64(n)*DecodedSpanBytes
	if held, err = r.adm.resize(ctx, held, need); err != nil {
		if errors.Is(err, errTooBig) {
			return nil, status.Errorf(codes.InvalidArgument, "request of %d bytes and %d spans needs %d bytes to decode, over the receiver's in-flight limit of %d; send smaller batches",
				wire, n, need, r.limits.MaxInflightBytes)
		}
		r.refusedInflight.Add(1)
		return nil, r.exhausted("abmesh OTLP receiver: " + err.Error() + "; retry later")
	}
	defer r.adm.release(held)
	b := r.batches.Get().(*tracing.Batch)
	defer r.putBatch(b)
	b.Summaries = slices.Grow(b.Summaries, n)
	if err := otlp.DecodeSummaries(*data, b); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "request: %v", err)
	}
	if r.journal == nil {
		return r.add(b)
	}
	return r.addJournaled(ctx, *data, b)
}

// addJournaled appends the request's bytes to the journal, hands the
// batch to the sink, and answers once the record is durable. A batch the
// sink refuses is aborted in the journal: it is never replayed.
func (r *Receiver) addJournaled(ctx context.Context, data []byte, b *tracing.Batch) (*collectortrace.ExportTraceServiceResponse, error) {
	seq, err := r.journal.Append(data)
	if err != nil {
		r.refused.Add(1)
		if r.journalFull != nil && r.journalFull(err) {
			r.journalRefused.Add(1)
			return nil, r.exhausted("abmesh write-ahead log is full (--wal-max-bytes); retry later")
		}
		return nil, status.Errorf(codes.Unavailable, "write-ahead log: %v", err)
	}
	b.Seq = seq
	resp, err := r.add(b)
	if err != nil {
		r.journal.Abort(seq)
		return nil, err
	}
	r.journal.Done(seq)
	if err := r.journal.Wait(ctx, seq); err != nil {
		// The spans are in the assembler and the record may be durable:
		// the exporter's retry is recognized as duplicate or late spans.
		return nil, status.Errorf(codes.Unavailable, "write-ahead log: %v", err)
	}
	return resp, nil
}

// Replay decodes a request read back from the journal (record seq) with
// the same decoder as a received one and hands it to the sink. When the
// sink is full it flushes flush (completing the traces in flight; may be
// nil) and retries once. It counts nothing in Stats.
func (r *Receiver) Replay(seq uint64, data []byte, flush func()) error {
	b := r.batches.Get().(*tracing.Batch)
	defer r.putBatch(b)
	if err := otlp.DecodeSummaries(data, b); err != nil {
		return fmt.Errorf("record %d: %w", seq, err)
	}
	b.Seq = seq
	_, err := r.sink.Add(b)
	if errors.Is(err, tracing.ErrFull) && flush != nil {
		flush()
		_, err = r.sink.Add(b)
	}
	if err != nil && !errors.Is(err, tracing.ErrTooLarge) {
		return fmt.Errorf("record %d: %w", seq, err)
	}
	return nil
}

// maxPooledSpans is the largest batch kept for reuse; larger ones, from
// rare large requests, are left to the garbage collector.
const maxPooledSpans = 8192

func (r *Receiver) putBatch(b *tracing.Batch) {
	if cap(b.Spans) > maxPooledSpans || cap(b.Summaries) > maxPooledSpans {
		return
	}
	b.Reset()
	r.batches.Put(b)
}

// Stats are a Receiver's request counts.
type Stats struct {
	Requests uint64 // Export calls
	Refused  uint64 // Export calls answered RESOURCE_EXHAUSTED or UNAVAILABLE
	// RefusedInflight counts the Refused calls refused for
	// Limits.MaxInflightBytes (the others, for a full sink or shutdown).
	RefusedInflight uint64
	// RefusedFull counts the Refused calls refused before they were
	// decoded because the sink had no room (RoomSink).
	RefusedFull uint64
	// RefusedJournal counts the Refused calls refused because the
	// journal was full.
	RefusedJournal uint64
	Spans          uint64 // spans in requests that were not refused
}

// Stats returns the request counts so far.
func (r *Receiver) Stats() Stats {
	return Stats{Requests: r.requests.Load(), Refused: r.refused.Load() + r.refusedInflight.Load(),
		RefusedInflight: r.refusedInflight.Load(), RefusedFull: r.refusedFull.Load(), RefusedJournal: r.journalRefused.Load(), Spans: r.spans.Load()}
}

// Export converts the request's spans and adds them to the sink, all or
// nothing: when the sink is full it returns RESOURCE_EXHAUSTED (with a
// RetryInfo) having accepted none, so the exporter's retry cannot
// duplicate spans; when the request alone exceeds the sink's limits,
// INVALID_ARGUMENT (not retried); when the sink is closed, UNAVAILABLE. Otherwise it
// succeeds, reporting malformed and late spans in partial_success
// (rejected_spans and an error_message naming the reasons and the first
// bad span).
func (r *Receiver) Export(ctx context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	r.requests.Add(1)
	b := r.batches.Get().(*tracing.Batch)
	defer r.putBatch(b)
	otlp.Convert(req.GetResourceSpans(), b)
	return r.add(b)
}

// add hands a converted batch to the sink and maps the outcome to the
// OTLP response or status.
func (r *Receiver) add(b *tracing.Batch) (*collectortrace.ExportTraceServiceResponse, error) {
	n := b.Len()
	res, err := r.sink.Add(b)
	switch {
	case errors.Is(err, tracing.ErrFull):
		r.refused.Add(1)
		return nil, r.exhausted("abmesh trace assembler is full; retry later")
	case errors.Is(err, tracing.ErrTooLarge):
		return nil, status.Errorf(codes.InvalidArgument, "request of %d spans exceeds the trace assembler's limits; send smaller batches", n)
	case errors.Is(err, tracing.ErrClosed):
		r.refused.Add(1)
		return nil, status.Error(codes.Unavailable, "abmesh trace assembler is shutting down")
	case err != nil:
		return nil, status.Errorf(codes.Internal, "add spans: %v", err)
	}
	r.spans.Add(uint64(n))
	resp := &collectortrace.ExportTraceServiceResponse{}
	if k := res.RejectedSpans(); k > 0 {
		resp.PartialSuccess = &collectortrace.ExportTracePartialSuccess{
			RejectedSpans: int64(k),
			ErrorMessage:  res.Message(),
		}
	}
	return resp, nil
}

// exhausted returns RESOURCE_EXHAUSTED with msg and a RetryInfo of the
// receiver's retry delay.
func (r *Receiver) exhausted(msg string) error {
	st := status.New(codes.ResourceExhausted, msg)
	if d, err := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(r.retryDelay)}); err == nil {
		st = d
	}
	return st.Err()
}
