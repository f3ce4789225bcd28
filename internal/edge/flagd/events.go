package flagd

import (
	"context"
	"reflect"
	"slices"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/abmesh/abmesh/assign"
	evalpb "github.com/abmesh/abmesh/proto/flagd/evaluation/v1"
)

// Event types of an event stream (flagd's).
const (
	EventProviderReady       = "provider_ready"
	EventConfigurationChange = "configuration_change"
	EventKeepAlive           = "keep_alive"
)

// Kinds of flag change in a configuration_change event (flagd's).
const (
	changeWrite  = "write"  // a new flag
	changeUpdate = "update" // a changed flag
	changeDelete = "delete" // a removed flag
)

// EventStream sends provider_ready at once, then a configuration_change
// at every configuration version change, with data
//
//	{"flags": {"<test id>": {"type": "write"|"update"|"delete"}, ...}, "configVersion": N}
//
// naming the tests whose evaluation may have changed (the test itself or
// its overrides; "flags" may be empty when only something else changed,
// such as a layer's description), and keep_alive after every keepAlive
// without an event. It ends when the client goes away or the server stops
// (Unavailable: providers reconnect).
func (s *Service) EventStream(_ *evalpb.EventStreamRequest, stream evalpb.Service_EventStreamServer) error {
	return s.events(stream.Context(), stream.Send)
}

// events runs an event stream (see EventStream) whatever the transport:
// send delivers one event.
func (s *Service) events(ctx context.Context, send func(*evalpb.EventStreamResponse) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(s.life, cancel)()
	updates := s.src.Subscribe(ctx)
	prev, ok := <-updates
	if !ok {
		return s.streamEnd(ctx)
	}
	if err := send(&evalpb.EventStreamResponse{Type: EventProviderReady}); err != nil {
		return err
	}
	idle := time.NewTimer(s.keepAlive)
	defer idle.Stop()
	for {
		var ev *evalpb.EventStreamResponse
		select {
		case eng, ok := <-updates:
			if !ok {
				return s.streamEnd(ctx)
			}
			if eng.Version() == prev.Version() {
				continue
			}
			ev = changeEvent(prev, eng)
			prev = eng
		case <-idle.C:
			ev = &evalpb.EventStreamResponse{Type: EventKeepAlive}
		}
		if err := send(ev); err != nil {
			return err
		}
		idle.Reset(s.keepAlive)
	}
}

// streamEnd is an event stream's final status once ctx is done.
func (s *Service) streamEnd(ctx context.Context) error {
	if s.life.Err() != nil {
		return status.Error(codes.Unavailable, "abmeshd is shutting down")
	}
	return status.FromContextError(ctx.Err()).Err()
}

// changeEvent is the configuration_change event from prev to next.
func changeEvent(prev, next *assign.Engine) *evalpb.EventStreamResponse {
	flags := make(map[string]any)
	for id, kind := range changedFlags(prev.Config(), next.Config()) {
		flags[id] = map[string]any{"type": kind}
	}
	data, _ := structpb.NewStruct(map[string]any{"flags": flags, "configVersion": float64(next.Version())})
	return &evalpb.EventStreamResponse{Type: EventConfigurationChange, Data: data}
}

// changedFlags returns the tests of next that are new (write) or whose
// experiment or overrides differ from prev's (update), and those of prev
// that next no longer has (delete).
func changedFlags(prev, next assign.Config) map[string]string {
	before, after := testsByID(prev), testsByID(next)
	out := make(map[string]string)
	for id, b := range before {
		a, ok := after[id]
		switch {
		case !ok:
			out[id] = changeDelete
		case !reflect.DeepEqual(*a.exp, *b.exp) || !slices.Equal(a.overrides, b.overrides):
			out[id] = changeUpdate
		}
	}
	for id := range after {
		if _, ok := before[id]; !ok {
			out[id] = changeWrite
		}
	}
	return out
}

// testState is what a test's evaluation depends on.
type testState struct {
	exp       *assign.Experiment
	overrides []assign.Override // in the Config's order
}

func testsByID(c assign.Config) map[string]testState {
	m := make(map[string]testState, len(c.Experiments))
	for i := range c.Experiments {
		m[c.Experiments[i].ID] = testState{exp: &c.Experiments[i]}
	}
	for _, o := range c.Overrides {
		if t, ok := m[o.Experiment]; ok {
			t.overrides = append(t.overrides, o)
			m[o.Experiment] = t
		}
	}
	return m
}
