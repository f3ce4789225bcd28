package flagd

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/abmesh/abmesh/assign"
	evalpb "github.com/abmesh/abmesh/proto/flagd/evaluation/v1"
)

// Source is the live assignment configuration (an *assign.Registry).
type Source interface {
	// Snapshot returns the current configuration; never nil.
	Snapshot() *assign.Engine
	// Subscribe returns a channel that first receives the current Engine,
	// then the latest one after every change (coalesced); it is closed when
	// ctx is done.
	Subscribe(ctx context.Context) <-chan *assign.Engine
}

// DefaultKeepAlive is how long an event stream may stay silent before it
// sends a keep_alive event (flagd's interval).
const DefaultKeepAlive = 20 * time.Second

// Service implements flagd.evaluation.v1.Service over a Source.
type Service struct {
	evalpb.UnimplementedServiceServer
	src Source
	// life ends open event streams when the server shuts down (a graceful
	// stop waits for streams, and EventStream never ends by itself).
	life      context.Context
	keepAlive time.Duration
}

var _ evalpb.ServiceServer = (*Service)(nil)

// Option configures New.
type Option func(*Service)

// WithKeepAlive sets the event streams' keep-alive interval
// (DefaultKeepAlive when unset or not positive).
func WithKeepAlive(d time.Duration) Option {
	return func(s *Service) {
		if d > 0 {
			s.keepAlive = d
		}
	}
}

// New returns the service over src. Event streams end when life is done.
func New(life context.Context, src Source, opts ...Option) *Service {
	s := &Service{src: src, life: life, keepAlive: DefaultKeepAlive}
	for _, o := range opts {
		o(s)
	}
	return s
}

// flagd's error messages (its readable forms of FLAG_NOT_FOUND and
// TYPE_MISMATCH).
const (
	msgFlagNotFound = "Flag not found"
	msgTypeMismatch = "Type mismatch error"
)

// errFlagNotFound is flagd's answer for an unknown flag key.
var errFlagNotFound = status.Error(codes.NotFound, msgFlagNotFound)

// invalid returns InvalidArgument naming field.
func invalid(field, format string, args ...any) error {
	return status.Error(codes.InvalidArgument, field+": "+fmt.Sprintf(format, args...))
}

// typeMismatch returns flagd's TYPE_MISMATCH status with why.
func typeMismatch(format string, args ...any) error {
	return status.Error(codes.InvalidArgument, msgTypeMismatch+": "+fmt.Sprintf(format, args...))
}

// result is one test's evaluation.
type result struct {
	a       assign.Assignment
	version uint64
}

func (r result) reason() string             { return Reason(r.a.Reason) }
func (r result) metadata() *structpb.Struct { return metadata(r.a, r.version) }

// lookup returns the test of flagKey in the current configuration, or
// flagd's FLAG_NOT_FOUND.
func (s *Service) lookup(flagKey string) (*assign.Engine, *assign.Experiment, error) {
	eng := s.src.Snapshot()
	x, ok := eng.Experiment(flagKey)
	if !ok {
		return nil, nil, errFlagNotFound
	}
	return eng, x, nil
}

// evaluate assigns the context's unit in one test, as Assign would.
// checkType, when set, may refuse the test's type before the context is
// read (TYPE_MISMATCH comes before context errors, as in flagd).
func (s *Service) evaluate(flagKey string, c *structpb.Struct, checkType func(*assign.Experiment) error) (result, error) {
	eng, x, err := s.lookup(flagKey)
	if err != nil {
		return result{}, err
	}
	if checkType != nil {
		if err := checkType(x); err != nil {
			return result{}, err
		}
	}
	ec, err := parseContext(c)
	if err != nil {
		return result{}, err
	}
	a, err := eng.EvaluateTest(flagKey, ec.unit, ec.attrs)
	if err != nil { // unreachable: the test exists and the context is valid
		return result{}, status.Error(codes.Internal, err.Error())
	}
	return result{a: a, version: eng.Version()}, nil
}

// checkBool refuses a test that is not a boolean flag.
func checkBool(x *assign.Experiment) error {
	if assign.IsBoolean(x) {
		return nil
	}
	names := make([]string, len(x.Variants))
	for i, v := range x.Variants {
		names[i] = v.Name
	}
	return typeMismatch("test %q has variants %q; a boolean flag is a test with two variants named on/off or true/false (ResolveString answers any test)", x.ID, names)
}

// noNumbersOrObjects refuses every test for the numeric and object
// resolvers: an abmesh variant is a name.
func noNumbersOrObjects(kind string) func(*assign.Experiment) error {
	return func(x *assign.Experiment) error {
		return typeMismatch("test %q is a string flag (its value is the variant's name), not %s; use ResolveString", x.ID, kind)
	}
}

// ResolveString answers the unit's variant name.
func (s *Service) ResolveString(_ context.Context, req *evalpb.ResolveStringRequest) (*evalpb.ResolveStringResponse, error) {
	r, err := s.evaluate(req.GetFlagKey(), req.GetContext(), nil)
	if err != nil {
		return nil, err
	}
	return &evalpb.ResolveStringResponse{Value: r.a.Variant, Reason: r.reason(), Variant: r.a.Variant, Metadata: r.metadata()}, nil
}

// ResolveBoolean answers a boolean test's variant as a boolean: on and
// true are true. Other tests are TYPE_MISMATCH.
func (s *Service) ResolveBoolean(_ context.Context, req *evalpb.ResolveBooleanRequest) (*evalpb.ResolveBooleanResponse, error) {
	r, err := s.evaluate(req.GetFlagKey(), req.GetContext(), checkBool)
	if err != nil {
		return nil, err
	}
	return &evalpb.ResolveBooleanResponse{Value: assign.BoolValue(r.a.Variant), Reason: r.reason(), Variant: r.a.Variant, Metadata: r.metadata()}, nil
}

// ResolveFloat is TYPE_MISMATCH for every test (FLAG_NOT_FOUND for an
// unknown key).
func (s *Service) ResolveFloat(_ context.Context, req *evalpb.ResolveFloatRequest) (*evalpb.ResolveFloatResponse, error) {
	_, err := s.evaluate(req.GetFlagKey(), req.GetContext(), noNumbersOrObjects("a float"))
	return nil, err
}

// ResolveInt is TYPE_MISMATCH for every test (FLAG_NOT_FOUND for an
// unknown key).
func (s *Service) ResolveInt(_ context.Context, req *evalpb.ResolveIntRequest) (*evalpb.ResolveIntResponse, error) {
	_, err := s.evaluate(req.GetFlagKey(), req.GetContext(), noNumbersOrObjects("an integer"))
	return nil, err
}

// ResolveObject is TYPE_MISMATCH for every test (FLAG_NOT_FOUND for an
// unknown key).
func (s *Service) ResolveObject(_ context.Context, req *evalpb.ResolveObjectRequest) (*evalpb.ResolveObjectResponse, error) {
	_, err := s.evaluate(req.GetFlagKey(), req.GetContext(), noNumbersOrObjects("an object"))
	return nil, err
}

// ResolveAll answers every test Assign answers for the context (all but
// drafts: running tests, paused ones with their control, concluded ones
// with their winner), keyed by test id. A boolean test's value is a
// bool_value, any other's the variant name as a string_value.
func (s *Service) ResolveAll(_ context.Context, req *evalpb.ResolveAllRequest) (*evalpb.ResolveAllResponse, error) {
	ec, err := parseContext(req.GetContext())
	if err != nil {
		return nil, err
	}
	eng := s.src.Snapshot()
	as := eng.AppendAssignments(nil, ec.unit, ec.attrs, assign.Filter{})
	resp := &evalpb.ResolveAllResponse{
		Flags:    make(map[string]*evalpb.AnyFlag, len(as)),
		Metadata: &structpb.Struct{Fields: map[string]*structpb.Value{"configVersion": structpb.NewNumberValue(float64(eng.Version()))}},
	}
	for _, a := range as {
		f := &evalpb.AnyFlag{Reason: Reason(a.Reason), Variant: a.Variant, Metadata: metadata(a, eng.Version())}
		if x, _ := eng.Experiment(a.Test); x != nil && assign.IsBoolean(x) {
			f.Value = &evalpb.AnyFlag_BoolValue{BoolValue: assign.BoolValue(a.Variant)}
		} else {
			f.Value = &evalpb.AnyFlag_StringValue{StringValue: a.Variant}
		}
		resp.Flags[a.Test] = f
	}
	return resp, nil
}
