package report

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/subset"
)

// Errors of Reader.Report. The gRPC API maps them to NotFound and
// FailedPrecondition, the web pages to 404 and 400.
var (
	// ErrNotFound: the test, or the window asked for, does not exist.
	ErrNotFound = errors.New("not found")
	// ErrNoWindow: the test exists but has no analysis window: it never
	// ran, or never counted a request.
	ErrNoWindow = errors.New("no analysis window")
)

// requestError is an error of Reader.Report: its own message (which names
// the request field at fault) over one of the sentinels above.
type requestError struct {
	msg  string
	kind error
}

func (e *requestError) Error() string { return e.msg }
func (e *requestError) Unwrap() error { return e.kind }

func notFound(format string, args ...any) error {
	return &requestError{msg: fmt.Sprintf(format, args...), kind: ErrNotFound}
}

// Configs gives the live experiment configuration (an *assign.Registry).
type Configs interface {
	// Snapshot returns the current configuration; never nil.
	Snapshot() *assign.Engine
}

// Windows gives a viewpoint's analysis windows: Local's for one process,
// or windows merged from a shared store (a read that ctx may cancel).
type Windows interface {
	// Current returns the viewpoint's active window; false when it is not
	// running.
	Current(ctx context.Context, viewpoint string) (subset.WindowCells, bool)
	// List returns the viewpoint's windows that counted anything (and the
	// active one), oldest first.
	List(ctx context.Context, viewpoint string) []subset.WindowCells
}

// InMemory is windows read in memory, with nothing to cancel (a
// *subset.Windows).
type InMemory interface {
	Current(viewpoint string) (subset.WindowCells, bool)
	List(viewpoint string) []subset.WindowCells
}

// Local returns ws as Windows.
func Local(ws InMemory) Windows { return local{ws} }

type local struct{ ws InMemory }

func (l local) Current(_ context.Context, viewpoint string) (subset.WindowCells, bool) {
	return l.ws.Current(viewpoint)
}

func (l local) List(_ context.Context, viewpoint string) []subset.WindowCells {
	return l.ws.List(viewpoint)
}

// Reader builds reports of live windows with the live configuration, and
// keeps the History of their looks: every report of a viewpoint's current
// window (and every LookAll) records one. It is safe for concurrent use
// when its sources are.
type Reader struct {
	cfg  Configs
	ws   Windows
	hist *History
}

// NewReader returns a Reader over cfg and ws.
func NewReader(cfg Configs, ws Windows) *Reader {
	return &Reader{cfg: cfg, ws: ws, hist: NewHistory()}
}

// LookAll builds the report of every running experiment's current window
// and records its look, so the History has one look per call (the
// daemon calls it at every flush) even when nobody reads the reports.
func (r *Reader) LookAll(ctx context.Context, now time.Time) {
	eng := r.cfg.Snapshot()
	for _, x := range eng.Config().Experiments {
		if x.Status != assign.StatusRunning {
			continue
		}
		if w, ok := r.ws.Current(ctx, x.ID); ok {
			r.hist.Record(Build(w, eng.Experiment, Options{Now: now}))
		}
	}
}

// Report returns the report of test's window: window 0 is the current
// one or, for a test no longer running (paused, concluded, deleted), its
// last window that counted requests, frozen (a note says so); window n > 0
// is the window with that Seq. Errors wrap ErrNotFound (an unknown test, or
// no window n) or ErrNoWindow (a known test with no window: not running).
// ctx bounds reading windows from a shared store; once it is done Report
// returns its error.
func (r *Reader) Report(ctx context.Context, test string, window int, opt Options) (*Report, error) {
	eng := r.cfg.Snapshot()
	w, last, found := r.pick(ctx, test, window)
	if err := ctx.Err(); err != nil {
		return nil, err // what was read may be partial; nobody waits for it
	}
	if !found {
		if _, ok := eng.Experiment(test); !ok {
			return nil, notFound("test_id: experiment %q not found", test)
		}
		if window != 0 {
			return nil, notFound("window: experiment %q has no window %d", test, window)
		}
		return nil, &requestError{msg: fmt.Sprintf("experiment %q has no analysis window: it is not running", test), kind: ErrNoWindow}
	}
	rep := Build(w, eng.Experiment, opt)
	if last {
		rep.note("%s is not running: this is its last window (%d), frozen", test, w.Seq)
	}
	if w.Open() { // the current window: only the active one is open
		r.hist.Record(rep)
	} else {
		rep.Looks = r.hist.Looks(test, w.Seq)
	}
	return rep, nil
}

// pick chooses the window Report reads; last is true when window 0 fell
// back to the last window of a test that is not running.
func (r *Reader) pick(ctx context.Context, test string, window int) (w subset.WindowCells, last, found bool) {
	if window == 0 {
		if w, ok := r.ws.Current(ctx, test); ok {
			return w, false, true
		}
		if all := r.ws.List(ctx, test); len(all) > 0 {
			return all[len(all)-1], true, true
		}
		return subset.WindowCells{}, false, false
	}
	for _, x := range r.ws.List(ctx, test) {
		if x.Seq == window {
			return x, false, true
		}
	}
	return subset.WindowCells{}, false, false
}
