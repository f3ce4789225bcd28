package openfeature

import (
	"maps"
	"reflect"
	"slices"

	of "github.com/open-feature/go-sdk/openfeature"

	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/assign/client"
)

// state is what the provider knows of its Client and of the SDK's calls.
// Only onWatch changes ready, stale and eng; only Init changes initCalled
// and initFailed.
type state struct {
	initCalled bool           // Init has been called: the SDK listens to the events
	initFailed bool           // Init gave up before the first configuration
	ready      bool           // a configuration is in use
	stale      bool           // the Watch stream broke and is not back
	eng        *assign.Engine // the configuration the events last described
}

// onWatch turns the Client's watch events into provider events. It runs
// on the Client's watch goroutine, so the events are sent in order, from
// one goroutine.
func (p *Provider) onWatch(ev client.WatchEvent) {
	p.mu.Lock()
	wasReady := p.st.ready
	out := p.st.next(ev)
	becameReady := !wasReady && p.st.ready
	p.mu.Unlock()
	if becameReady {
		close(p.ready)
	}
	for _, e := range out {
		select {
		case p.events <- e:
		case <-p.done:
			return
		}
	}
}

// next applies ev to s and returns the provider events it causes: none
// before Init (the SDK emits PROVIDER_READY when Init returns), READY for
// the first configuration when Init has given up, CONFIGURATION_CHANGED
// for a new version or changed tests, STALE when a stream breaks, READY
// when one is back.
func (s *state) next(ev client.WatchEvent) []of.Event {
	var out []of.Event
	switch ev.Kind {
	case client.WatchInstalled:
		if !s.ready {
			s.ready, s.eng = true, ev.Engine
			if s.initFailed {
				out = append(out, event(of.ProviderReady, "first configuration from abmeshd", ev.Engine, nil))
			}
			break
		}
		changed := flagChanges(s.eng, ev.Engine)
		if ev.Engine.Version() != s.eng.Version() || len(changed) > 0 {
			out = append(out, event(of.ProviderConfigChange, "new configuration from abmeshd", ev.Engine, changed))
		}
		s.eng = ev.Engine
	case client.WatchConnected:
		if s.stale {
			s.stale = false
			out = append(out, event(of.ProviderReady, "reconnected to abmeshd", ev.Engine, nil))
		}
	case client.WatchDisconnected:
		if s.ready && !s.stale {
			s.stale = true
			msg := "abmeshd unreachable; serving the last configuration"
			if ev.Err != nil {
				msg += ": " + ev.Err.Error()
			}
			out = append(out, event(of.ProviderStale, msg, ev.Engine, nil))
		}
	}
	if !s.initCalled {
		return nil
	}
	return out
}

func event(kind of.EventType, msg string, eng *assign.Engine, changed []string) of.Event {
	return of.Event{ProviderName: Name, EventType: kind, ProviderEventDetails: of.ProviderEventDetails{
		Message:       msg,
		FlagChanges:   changed,
		EventMetadata: map[string]any{ConfigVersionKey: int64(eng.Version())},
	}}
}

// flagChanges returns, sorted, the ids of the tests added, removed, or
// changed (definition, status, phase, or overrides) from old to cur.
func flagChanges(old, cur *assign.Engine) []string {
	oc, nc := old.Config(), cur.Config()
	before := make(map[string]*assign.Experiment, len(oc.Experiments))
	for i := range oc.Experiments {
		before[oc.Experiments[i].ID] = &oc.Experiments[i]
	}
	ob, nb := overridesByTest(oc.Overrides), overridesByTest(nc.Overrides)
	var out []string
	for i := range nc.Experiments {
		x := &nc.Experiments[i]
		o, ok := before[x.ID]
		if !ok || !reflect.DeepEqual(o, x) || !slices.Equal(ob[x.ID], nb[x.ID]) {
			out = append(out, x.ID)
		}
		delete(before, x.ID)
	}
	out = append(out, slices.Collect(maps.Keys(before))...)
	slices.Sort(out)
	return out
}

func overridesByTest(ovs []assign.Override) map[string][]assign.Override {
	m := map[string][]assign.Override{}
	for _, ov := range ovs {
		m[ov.Experiment] = append(m[ov.Experiment], ov)
	}
	return m
}
