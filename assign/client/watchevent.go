package client

import (
	"strconv"

	"github.com/abmesh/abmesh/assign"
)

// WatchEvent is one change in a Client's connection to abmeshd or in the
// configuration it evaluates, as a WithWatchHook hook sees it.
type WatchEvent struct {
	Kind WatchEventKind
	// Engine is the configuration in use after the event: the one just
	// installed for WatchInstalled; nil while no snapshot has been
	// installed yet.
	Engine *assign.Engine
	// Err is what ended the stream, for WatchDisconnected.
	Err error
}

// WatchEventKind says what a WatchEvent reports.
type WatchEventKind int

const (
	// WatchConnected: a Watch stream delivered its first snapshot, on the
	// first connection or on a reconnection. A WatchInstalled for that
	// snapshot follows unless it is rejected.
	WatchConnected WatchEventKind = iota + 1
	// WatchInstalled: a snapshot was compiled and is now in use. The first
	// snapshot of every stream is installed, even when its version is the
	// one already in use (a restarted abmeshd may reuse versions).
	WatchInstalled
	// WatchDisconnected: a stream that had delivered at least one snapshot
	// broke. The Client serves its last snapshot and reconnects with its
	// Backoff; the failed attempts that follow are not reported, the next
	// successful one is (WatchConnected). Close reports nothing.
	WatchDisconnected
)

var watchEventKindNames = [...]string{
	WatchConnected:    "CONNECTED",
	WatchInstalled:    "INSTALLED",
	WatchDisconnected: "DISCONNECTED",
}

// String returns CONNECTED, INSTALLED or DISCONNECTED, or
// "WatchEventKind(n)" for values out of range.
func (k WatchEventKind) String() string {
	if k > 0 && int(k) < len(watchEventKindNames) {
		return watchEventKindNames[k]
	}
	return "WatchEventKind(" + strconv.Itoa(int(k)) + ")"
}

// notify calls the WithWatchHook hooks, in the order they were given.
func (c *Client) notify(kind WatchEventKind, err error) {
	if len(c.cfg.hooks) == 0 {
		return
	}
	ev := WatchEvent{Kind: kind, Engine: c.Engine(), Err: err}
	for _, h := range c.cfg.hooks {
		h(ev)
	}
}
