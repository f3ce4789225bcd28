package otlpreceiver

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sync/semaphore"
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/types/known/emptypb"
)

// Limits bound the memory of the requests a Receiver is reading and
// decoding. The zero value of each field means its default
// (DefaultLimits).
type Limits struct {
	// MaxMessageBytes is the largest request accepted (gRPC's receive
	// limit; a larger one is RESOURCE_EXHAUSTED without RetryInfo, which
	// exporters do not retry).
	MaxMessageBytes int
	// MaxInflightBytes bounds the bytes charged to the requests being read
	// and decoded at once (see Receiver for the charge). Past it, a request
	// is answered RESOURCE_EXHAUSTED with a RetryInfo. It must be at least
	// twice MaxMessageBytes.
	MaxInflightBytes int64
	// MaxStreams bounds the concurrent Export calls of one connection
	// (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS): a client queues the calls
	// past it.
	MaxStreams uint32
}

// Defaults of Limits.
const (
	DefaultMaxMessageBytes  = 16 << 20
	DefaultMaxInflightBytes = 64 << 20
	DefaultMaxStreams       = 64

	// DecodedSpanBytes is what the receiver charges a request for each of
	// its spans, on top of its wire bytes: a decoded tracing.SpanSummary
	// (104 bytes) with its flag events and numeric attributes. Realistic
	// spans (tracing/otlpload's: 341 wire bytes, ten attributes, a
	// feature-flag event on one span in five) decode to about 180 bytes.
	DecodedSpanBytes = 256

	// streamWindow is the HTTP/2 flow-control window of a stream before
	// the receiver reads it: a request not yet admitted holds at most this
	// much of abmeshd's memory. Admitted requests are read at full speed
	// (gRPC opens the window to the message's length).
	streamWindow = 256 << 10
	// admitWait bounds how long a request waits for its first
	// reservation: requests that are small hold it only while they are
	// copied out of gRPC's buffers, so a short wait spares them a refusal.
	admitWait = 100 * time.Millisecond
	// growWait bounds how long one request that needs more than its
	// first reservation waits for other requests to finish.
	growWait = 2 * time.Second
)

// DefaultLimits returns the Limits the zero Limits stands for.
func DefaultLimits() Limits {
	return Limits{MaxMessageBytes: DefaultMaxMessageBytes, MaxInflightBytes: DefaultMaxInflightBytes, MaxStreams: DefaultMaxStreams}
}

func (l *Limits) defaults() {
	d := DefaultLimits()
	if l.MaxMessageBytes == 0 {
		l.MaxMessageBytes = d.MaxMessageBytes
	}
	if l.MaxInflightBytes == 0 {
		l.MaxInflightBytes = d.MaxInflightBytes
	}
	if l.MaxStreams == 0 {
		l.MaxStreams = d.MaxStreams
	}
}

// Validate reports whether l, after defaults, is usable: positive sizes
// and MaxInflightBytes at least twice MaxMessageBytes (a request of the
// largest size must fit with its decoding).
func (l Limits) Validate() error {
	l.defaults()
	switch {
	case l.MaxMessageBytes < 0 || l.MaxInflightBytes < 0:
		return errors.New("otlp limits: sizes must be positive")
	case l.MaxInflightBytes < 2*int64(l.MaxMessageBytes):
		return fmt.Errorf("otlp limits: max in-flight bytes %d is below twice the max message size %d", l.MaxInflightBytes, l.MaxMessageBytes)
	}
	return nil
}

// WithLimits sets the Receiver's Limits; the server it is registered on
// must be built with the same Limits' ServerOptions.
func WithLimits(l Limits) Option {
	return optionFunc(func(r *Receiver) { r.limits = l })
}

// ServerOptions returns the options of a gRPC server dedicated to the
// OTLP receiver (Register): the receive limit, the streams per connection,
// a fixed stream window (so that requests waiting for admission hold at
// most 256 KiB each) and a codec that hands the request's bytes to the
// receiver as received, without copying or parsing them (garbage is then
// the receiver's INVALID_ARGUMENT, not gRPC's INTERNAL). Other services on
// the same server keep protobuf decoding.
func (l Limits) ServerOptions() []grpc.ServerOption {
	l.defaults()
	return []grpc.ServerOption{
		grpc.MaxRecvMsgSize(l.MaxMessageBytes),
		grpc.MaxConcurrentStreams(l.MaxStreams),
		grpc.InitialWindowSize(streamWindow),
		grpc.InitialConnWindowSize(4 * streamWindow),
		grpc.ForceServerCodecV2(requestCodec{encoding.GetCodecV2("proto")}),
	}
}

// rawRequest receives an Export request. Under requestCodec (ServerOptions)
// it keeps the received buffers, else gRPC's protobuf codec decodes the
// request into the embedded Empty, whose unknown fields are then all of
// it (a copy).
type rawRequest struct {
	emptypb.Empty
	data mem.BufferSlice
	held bool // data was kept by requestCodec
}

// takeBytes returns the request's bytes in one buffer. Kept buffers are
// copied into one from pool (pooled is true: put it back) and released
// one by one as they are copied, so that the request is never held twice
// over.
func (q *rawRequest) takeBytes(pool mem.BufferPool) (data *[]byte, pooled bool) {
	if !q.held {
		b := []byte(q.ProtoReflect().GetUnknown())
		return &b, false
	}
	buf := pool.Get(q.data.Len())
	off := 0
	for _, b := range q.data {
		off += copy((*buf)[off:], b.ReadOnlyData())
		b.Free()
	}
	q.data, q.held = nil, false
	return buf, true
}

// len returns the request's size in bytes.
func (q *rawRequest) len() int {
	if q.held {
		return q.data.Len()
	}
	return len(q.ProtoReflect().GetUnknown())
}

// free releases what the request holds.
func (q *rawRequest) free() {
	if q.held {
		q.data.Free()
		q.data, q.held = nil, false
	}
}

// requestCodec is gRPC's protobuf codec except for rawRequest, which keeps
// the received buffers (with a reference of its own).
type requestCodec struct{ proto encoding.CodecV2 }

func (c requestCodec) Marshal(v any) (mem.BufferSlice, error) { return c.proto.Marshal(v) }

func (c requestCodec) Unmarshal(data mem.BufferSlice, v any) error {
	if q, ok := v.(*rawRequest); ok {
		data.Ref()
		q.data, q.held = data, true
		return nil
	}
	return c.proto.Unmarshal(data, v)
}

func (requestCodec) Name() string { return "proto" }

// admission is the byte budget of the requests being read and decoded
// (Limits.MaxInflightBytes). A request reserves the largest message
// before it is read, waiting up to admitWait, then exactly its charge
// once its size and span count are known. One request at a time may wait
// up to growWait to grow its reservation (others needing to grow are
// refused at once); the semaphore serves waiters first come, first
// served, so a grower cannot starve, and a request holding bytes never
// waits on another request holding bytes for longer than growWait.
type admission struct {
	sem     *semaphore.Weighted
	max     int64
	maxMsg  int64
	growing sync.Mutex
}

func newAdmission(l Limits) *admission {
	return &admission{sem: semaphore.NewWeighted(l.MaxInflightBytes), max: l.MaxInflightBytes, maxMsg: int64(l.MaxMessageBytes)}
}

// errBusy is a refusal for the budget: RESOURCE_EXHAUSTED with RetryInfo.
var errBusy = errors.New("too many bytes of OTLP requests in flight")

// errTooBig is a request whose decoding alone exceeds the budget.
var errTooBig = errors.New("request too large to decode within the in-flight limit")

// reserve takes the largest message's bytes before a request is read,
// waiting up to admitWait; it returns the bytes held, or errBusy.
func (a *admission) reserve(ctx context.Context) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, admitWait)
	defer cancel()
	if err := a.sem.Acquire(ctx, a.maxMsg); err != nil {
		return 0, errBusy
	}
	return a.maxMsg, nil
}

// resize changes a reservation of held bytes to need bytes. On error the
// whole reservation is released: errTooBig when need exceeds the budget,
// errBusy when the budget does not free up.
func (a *admission) resize(ctx context.Context, held, need int64) (int64, error) {
	switch {
	case need > a.max:
		a.sem.Release(held)
		return 0, errTooBig
	case need <= held:
		a.sem.Release(held - need)
		return need, nil
	case a.sem.TryAcquire(need - held):
		return need, nil
	case !a.growing.TryLock():
		a.sem.Release(held)
		return 0, errBusy
	}
	defer a.growing.Unlock()
	ctx, cancel := context.WithTimeout(ctx, growWait)
	defer cancel()
	if err := a.sem.Acquire(ctx, need-held); err != nil {
		a.sem.Release(held)
		return 0, errBusy
	}
	return need, nil
}

// release returns n reserved bytes.
func (a *admission) release(n int64) { a.sem.Release(n) }
