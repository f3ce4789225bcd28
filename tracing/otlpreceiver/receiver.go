package otlpreceiver

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/abmesh/abmesh/tracing"
	"github.com/abmesh/abmesh/tracing/otlp"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/emptypb"
)

// Sink takes converted batches; *tracing.Assembler is one. Add must follow
// the Assembler's contract: tracing.ErrFull means nothing of the batch was
// taken; tracing.ErrClosed means it never will be.
type Sink interface {
	Add(b *tracing.Batch) (tracing.AddResult, error)
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

// Receiver implements the OTLP TraceService. It is safe for concurrent use.
type Receiver struct {
	collectortrace.UnimplementedTraceServiceServer

	sink       Sink
	retryDelay time.Duration
	batches    sync.Pool

	requests, refused, spans atomic.Uint64
}

var _ collectortrace.TraceServiceServer = (*Receiver)(nil)

// New returns a Receiver adding spans to sink.
func New(sink Sink, opts ...Option) *Receiver {
	r := &Receiver{sink: sink, retryDelay: time.Second}
	for _, o := range opts {
		o.apply(r)
	}
	r.batches.New = func() any { return new(tracing.Batch) }
	return r
}

// Register registers a new Receiver for sink on s as the OTLP
// TraceService and returns it.
//
// The registered handler decodes requests with otlp.DecodeProto, straight
// from the wire bytes, about four times faster than generated messages;
// the results are the same as Export's. For that, gRPC decodes each
// request into an emptypb.Empty, which keeps the whole request as its
// unknown fields: a unary server interceptor on s sees that Empty as the
// request, not an ExportTraceServiceRequest.
func Register(s *grpc.Server, sink Sink, opts ...Option) *Receiver {
	r := New(sink, opts...)
	s.RegisterService(&rawServiceDesc, r)
	return r
}

// RegisterTyped registers r on s through the generated service
// description, so that interceptors see ExportTraceServiceRequest
// messages; decoding is slower than with Register.
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
	exportRaw(ctx context.Context, req *emptypb.Empty) (*collectortrace.ExportTraceServiceResponse, error)
}

func rawExportHandler(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
	in := new(emptypb.Empty)
	if err := dec(in); err != nil {
		return nil, err
	}
	if interceptor == nil {
		return srv.(rawExporter).exportRaw(ctx, in)
	}
	info := &grpc.UnaryServerInfo{Server: srv, FullMethod: collectortrace.TraceService_Export_FullMethodName}
	handler := func(ctx context.Context, req any) (any, error) {
		return srv.(rawExporter).exportRaw(ctx, req.(*emptypb.Empty))
	}
	return interceptor(ctx, in, info, handler)
}

// exportRaw is Export for a request held as the unknown fields of an
// Empty (all of ExportTraceServiceRequest's fields are unknown to Empty).
func (r *Receiver) exportRaw(ctx context.Context, req *emptypb.Empty) (*collectortrace.ExportTraceServiceResponse, error) {
	r.requests.Add(1)
	b := r.batches.Get().(*tracing.Batch)
	defer r.putBatch(b)
	if err := otlp.DecodeProto(req.ProtoReflect().GetUnknown(), b); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "request: %v", err)
	}
	return r.add(b)
}

func (r *Receiver) putBatch(b *tracing.Batch) {
	b.Reset()
	r.batches.Put(b)
}

// Stats are a Receiver's request counts.
type Stats struct {
	Requests uint64 // Export calls
	Refused  uint64 // Export calls answered RESOURCE_EXHAUSTED or UNAVAILABLE
	Spans    uint64 // spans in requests that were not refused
}

// Stats returns the request counts so far.
func (r *Receiver) Stats() Stats {
	return Stats{Requests: r.requests.Load(), Refused: r.refused.Load(), Spans: r.spans.Load()}
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
		st := status.New(codes.ResourceExhausted, "abmesh trace assembler is full; retry later")
		if d, derr := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(r.retryDelay)}); derr == nil {
			st = d
		}
		return nil, st.Err()
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
