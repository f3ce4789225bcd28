package wal

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ErrFull is returned by Append when the record would take the log past
// Options.MaxBytes: the caller refuses the request (RESOURCE_EXHAUSTED)
// until truncation frees space.
var ErrFull = errors.New("wal: log full")

// ErrClosed is returned by Append and Wait after Close.
var ErrClosed = errors.New("wal: log closed")

const (
	headerLen = 8     // length + crc
	fixedLen  = 8 + 1 // seq + type, counted in length
	typeData  = byte(1)
	typeAbort = byte(2)
	suffix    = ".wal"
	// DefaultSegmentBytes is a segment's size before the log starts the
	// next one.
	DefaultSegmentBytes = 64 << 20
	// maxRecord bounds a record's length field on replay (a torn header
	// must not make replay allocate gigabytes).
	maxRecord = 1 << 30
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// Options configure a Log.
type Options struct {
	// MaxBytes bounds the log's size on disk plus what is buffered for
	// the next write; 0 means no bound. Append returns ErrFull past it.
	MaxBytes int64
	// SegmentBytes is the size past which the log starts a new segment
	// (default DefaultSegmentBytes). Smaller segments are truncated
	// sooner; each costs a file.
	SegmentBytes int64
}

// Log is a write-ahead log. Append, Abort, Done, Wait and Sync are safe
// for concurrent use.
type Log struct {
	dir  string
	opts Options

	mu       sync.Mutex
	wake     *sync.Cond // the syncer waits on it for records
	buf      []byte     // records appended, not yet written
	spare    []byte
	next     uint64 // the next data record's seq
	durable  uint64 // every record ≤ durable is on disk and fsynced
	synced   chan struct{}
	err      error // sticky write error
	closed   bool
	segs     []segment // oldest first; the last is being written
	file     *os.File  // the last segment
	size     int64     // bytes on disk + len(buf)
	inflight map[uint64]struct{}
	old      []segment // the segments found by Open, for Replay
	low      uint64    // the last truncation mark

	syncs, refused atomic.Uint64
	done           chan struct{}
}

type segment struct {
	first uint64 // first seq it may hold
	path  string
	size  int64
}

// Open opens the log in dir, creating it, and starts a new segment for
// appends; the records already there are kept for Replay. low is the
// caller's stored low-water mark (0 when none): the next record's seq is
// above every stored one and at least low.
func Open(dir string, low uint64, opts Options) (*Log, error) {
	if opts.SegmentBytes <= 0 {
		opts.SegmentBytes = DefaultSegmentBytes
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("wal: %w", err)
	}
	l := &Log{dir: dir, opts: opts, synced: make(chan struct{}), inflight: map[uint64]struct{}{}, done: make(chan struct{}), low: low}
	l.wake = sync.NewCond(&l.mu)
	old, last, err := scanDir(dir)
	if err != nil {
		return nil, err
	}
	l.old = old
	l.segs = slices.Clone(old)
	for _, s := range old {
		l.size += s.size
	}
	l.next = max(last+1, low, 1)
	l.durable = l.next - 1
	if err := l.newSegment(); err != nil {
		return nil, err
	}
	go l.syncer()
	return l, nil
}

// scanDir lists dir's segments, oldest first, and returns the highest
// data seq found in them (reading only record headers).
func scanDir(dir string) ([]segment, uint64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, 0, fmt.Errorf("wal: %w", err)
	}
	var segs []segment
	for _, e := range ents {
		name := e.Name()
		if !strings.HasSuffix(name, suffix) {
			continue
		}
		first, err := strconv.ParseUint(strings.TrimSuffix(name, suffix), 10, 64)
		if err != nil {
			continue
		}
		info, err := e.Info()
		if err != nil {
			return nil, 0, fmt.Errorf("wal: %w", err)
		}
		segs = append(segs, segment{first: first, path: filepath.Join(dir, name), size: info.Size()})
	}
	slices.SortFunc(segs, func(a, b segment) int { return cmpU64(a.first, b.first) })
	var last uint64
	for _, s := range segs {
		err := readSegment(s.path, false, func(seq uint64, typ byte, _ []byte) error {
			if typ == typeData {
				last = max(last, seq)
			}
			return nil
		})
		if err != nil {
			return nil, 0, err
		}
	}
	return segs, last, nil
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// readSegment calls f for each whole record of the segment at path, up
// to its end or a torn record. With payloads false it skips payloads
// (f gets nil, and CRCs are not checked, except that abort records are
// read whole). A torn record is not an error.
func readSegment(path string, payloads bool, f func(seq uint64, typ byte, payload []byte) error) error {
	file, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	defer file.Close()
	r := bufio.NewReaderSize(file, 1<<20)
	var hdr [headerLen + fixedLen]byte
	var body []byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return nil // end, or a torn header
		}
		n := binary.BigEndian.Uint32(hdr[0:])
		crc := binary.BigEndian.Uint32(hdr[4:])
		seq := binary.BigEndian.Uint64(hdr[8:])
		typ := hdr[16]
		if n < fixedLen || n > maxRecord || (typ != typeData && typ != typeAbort) {
			return nil
		}
		plen := int(n - fixedLen)
		if !payloads && typ == typeData {
			if d, err := r.Discard(plen); err != nil || d != plen {
				return nil
			}
			if err := f(seq, typ, nil); err != nil {
				return err
			}
			continue
		}
		body = slices.Grow(body[:0], plen)[:plen]
		if _, err := io.ReadFull(r, body); err != nil {
			return nil
		}
		c := crc32.Update(crc32.Checksum(hdr[8:], crcTable), crcTable, body)
		if c != crc {
			return nil
		}
		if err := f(seq, typ, body); err != nil {
			return err
		}
	}
}

// Replay calls f, in order, with every data record found by Open whose
// seq is at least from and that was not aborted. data is valid only
// during the call. Records after a torn one in a segment are not
// replayed. Replay may run while new records are appended.
func (l *Log) Replay(from uint64, f func(seq uint64, data []byte) error) error {
	aborted := map[uint64]bool{}
	for _, s := range l.old {
		err := readSegment(s.path, false, func(seq uint64, typ byte, _ []byte) error {
			if typ == typeAbort {
				aborted[seq] = true
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	for _, s := range l.old {
		err := readSegment(s.path, true, func(seq uint64, typ byte, data []byte) error {
			if typ != typeData || seq < from || aborted[seq] {
				return nil
			}
			return f(seq, data)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// newSegment starts a segment for the records written from now on. It is
// named by l.next, or by the last segment's name plus one when that is
// higher: a segment started when no record was appended since the last
// one started (or, on Open, the newest segment holding only records
// appended before it started) must not take, and truncate, an existing
// segment's name. Every record of a segment is below the next segment's
// name, which Truncate relies on. l.mu is held or the syncer is not
// running.
func (l *Log) newSegment() error {
	if l.file != nil {
		if err := l.file.Close(); err != nil {
			return fmt.Errorf("wal: %w", err)
		}
	}
	first := l.next
	if n := len(l.segs); n > 0 {
		first = max(first, l.segs[n-1].first+1)
	}
	s := segment{first: first, path: filepath.Join(l.dir, fmt.Sprintf("%020d%s", first, suffix))}
	f, err := os.OpenFile(s.path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	l.file = f
	l.segs = append(l.segs, s)
	return syncDir(l.dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("wal: sync %s: %w", dir, err)
	}
	return nil
}

// frame appends a record to l.buf. l.mu is held.
func (l *Log) frame(seq uint64, typ byte, payload []byte) {
	start := len(l.buf)
	l.buf = slices.Grow(l.buf, headerLen+fixedLen+len(payload))
	l.buf = binary.BigEndian.AppendUint32(l.buf, uint32(fixedLen+len(payload)))
	l.buf = append(l.buf, 0, 0, 0, 0)
	l.buf = binary.BigEndian.AppendUint64(l.buf, seq)
	l.buf = append(l.buf, typ)
	l.buf = append(l.buf, payload...)
	binary.BigEndian.PutUint32(l.buf[start+4:], crc32.Checksum(l.buf[start+headerLen:], crcTable))
	l.size += int64(len(l.buf) - start)
	l.wake.Signal()
}

// Append copies data into the log as a new record and returns its seq.
// The record is durable once Wait(seq) returns nil. Until Done or Abort
// is called for it, the record counts as in flight (see Pending). Errors:
// ErrFull past Options.MaxBytes, ErrClosed, or the log's write error.
func (l *Log) Append(data []byte) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.closed:
		return 0, ErrClosed
	case l.err != nil:
		return 0, l.err
	case l.opts.MaxBytes > 0 && l.size+int64(headerLen+fixedLen+len(data)) > l.opts.MaxBytes:
		l.refused.Add(1)
		return 0, ErrFull
	}
	seq := l.next
	l.next++
	l.frame(seq, typeData, data)
	l.inflight[seq] = struct{}{}
	return seq, nil
}

// Done says that record seq's content has been handed to the consumer,
// which from now on answers for it in its own low-water mark.
func (l *Log) Done(seq uint64) {
	l.mu.Lock()
	delete(l.inflight, seq)
	l.mu.Unlock()
}

// Abort says that record seq was not accepted after all: it is never
// replayed. It writes an abort record (durable with the next commit).
func (l *Log) Abort(seq uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.inflight, seq)
	if !l.closed && l.err == nil {
		l.frame(seq, typeAbort, nil)
	}
}

// Pending returns the lowest seq appended but neither Done nor Aborted,
// or the next seq when there is none: every record below it is either
// aborted or held by the consumer.
func (l *Log) Pending() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	low := l.next
	for s := range l.inflight {
		low = min(low, s)
	}
	return low
}

// Wait returns once record seq is durable, or the log failed, or ctx
// ended.
func (l *Log) Wait(ctx context.Context, seq uint64) error {
	for {
		l.mu.Lock()
		durable, err, ch, closed := l.durable, l.err, l.synced, l.closed
		l.mu.Unlock()
		switch {
		case durable >= seq:
			return nil
		case err != nil:
			return err
		case closed:
			return ErrClosed
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Sync returns once every record appended before the call is durable.
func (l *Log) Sync(ctx context.Context) error {
	l.mu.Lock()
	last := l.next - 1
	l.mu.Unlock()
	return l.Wait(ctx, last)
}

// syncer writes and fsyncs what was appended, one group at a time: every
// Append made while a group is being written joins the next one.
func (l *Log) syncer() {
	defer close(l.done)
	for {
		l.mu.Lock()
		for len(l.buf) == 0 && !l.closed {
			l.wake.Wait()
		}
		if len(l.buf) == 0 {
			l.mu.Unlock()
			return
		}
		b := l.buf
		l.buf, l.spare = l.spare[:0], nil
		last := l.next - 1
		file := l.file
		l.mu.Unlock()

		_, err := file.Write(b)
		if err == nil {
			err = file.Sync()
		}
		l.syncs.Add(1)

		l.mu.Lock()
		if err != nil && l.err == nil {
			l.err = fmt.Errorf("wal: write: %w", err)
		}
		if err == nil {
			l.durable = last
			l.segs[len(l.segs)-1].size += int64(len(b))
			if l.segs[len(l.segs)-1].size >= l.opts.SegmentBytes {
				if err := l.newSegment(); err != nil {
					l.err = err
				}
			}
		}
		l.spare = b
		close(l.synced)
		l.synced = make(chan struct{})
		l.mu.Unlock()
	}
}

// Truncate deletes every segment all of whose records are below low (the
// segment being written is kept). Call it once the state that includes
// those records is durable elsewhere.
func (l *Log) Truncate(low uint64) error {
	l.mu.Lock()
	var drop []segment
	l.low = max(l.low, low)
	for len(l.segs) > 1 && l.segs[1].first <= low {
		drop = append(drop, l.segs[0])
		l.size -= l.segs[0].size
		l.segs = l.segs[1:]
	}
	l.mu.Unlock()
	var errs []error
	for _, s := range drop {
		if err := os.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if len(drop) > 0 {
		errs = append(errs, syncDir(l.dir))
	}
	return errors.Join(errs...)
}

// Stats are a Log's figures.
type Stats struct {
	Bytes    int64  // on disk and buffered
	Segments int    // segment files
	Next     uint64 // the next record's seq
	Low      uint64 // the last truncation mark: records below it are flushed
	Syncs    uint64 // group commits (fsyncs)
	Refused  uint64 // Appends refused with ErrFull
}

// Lag is the number of records at or above the truncation mark: appended
// but not yet known to be flushed.
func (s Stats) Lag() uint64 {
	if s.Next <= s.Low {
		return 0
	}
	return s.Next - s.Low
}

// Stats returns the log's figures now.
func (l *Log) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return Stats{Bytes: l.size, Segments: len(l.segs), Next: l.next, Low: l.low, Syncs: l.syncs.Load(), Refused: l.refused.Load()}
}

// Close writes what is buffered, stops the log and closes its file.
// Appends and Waits after Close return ErrClosed. Idempotent.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.wake.Signal()
	l.mu.Unlock()
	select {
	case <-l.done:
	case <-time.After(30 * time.Second):
		return errors.New("wal: close: the last write did not finish in 30s")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return errors.Join(l.err, l.file.Close())
}
