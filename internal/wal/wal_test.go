package wal

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

func replayAll(t *testing.T, l *Log, from uint64) map[uint64]string {
	t.Helper()
	got := map[uint64]string{}
	if err := l.Replay(from, func(seq uint64, data []byte) error {
		got[seq] = string(data)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return got
}

// TestAppendReplay: concurrent appends are acknowledged only once
// durable, share fsyncs, and come back on reopen, but for aborted ones and
// those below the mark.
func TestAppendReplay(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, 0, Options{SegmentBytes: 4096})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	var mu sync.Mutex
	want := map[uint64]string{}
	for w := range 8 {
		wg.Go(func() {
			for i := range 100 {
				data := fmt.Sprintf("worker %d record %d", w, i)
				seq, err := l.Append([]byte(data))
				if err != nil {
					t.Error(err)
					return
				}
				if i%10 == 3 {
					l.Abort(seq)
					continue
				}
				l.Done(seq)
				if err := l.Wait(ctx, seq); err != nil {
					t.Error(err)
				}
				mu.Lock()
				want[seq] = data
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	st := l.Stats()
	if st.Syncs >= 800 || st.Segments < 2 || st.Next != 801 {
		t.Errorf("stats %+v: want fewer fsyncs than records, several segments, next 801", st)
	}
	if p := l.Pending(); p != 801 {
		t.Errorf("Pending %d, want 801 (none in flight)", p)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Append after Close: %v", err)
	}

	l, err = Open(dir, 0, Options{SegmentBytes: 4096})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got := replayAll(t, l, 0)
	if len(got) != len(want) {
		t.Fatalf("replayed %d records, want %d", len(got), len(want))
	}
	for seq, d := range want {
		if got[seq] != d {
			t.Fatalf("record %d = %q, want %q", seq, got[seq], d)
		}
	}
	for seq := range replayAll(t, l, 500) {
		if seq < 500 {
			t.Fatalf("replay from 500 gave %d", seq)
		}
	}
	if seq, _ := l.Append([]byte("x")); seq != 801 {
		t.Errorf("first seq after reopen %d, want 801", seq)
	}
}

// TestTornTail: a record cut by a crash, and anything after it, is not
// replayed; the records before it are.
func TestTornTail(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, 0, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		seq, _ := l.Append([]byte(fmt.Sprintf("record-%d", i)))
		l.Done(seq)
		if err := l.Wait(context.Background(), seq); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	segs, _ := filepath.Glob(filepath.Join(dir, "*.wal"))
	if len(segs) != 1 {
		t.Fatalf("segments %v", segs)
	}
	b, _ := os.ReadFile(segs[0])
	for _, cut := range []func([]byte) []byte{
		func(b []byte) []byte { return b[:len(b)-3] },                                     // short payload
		func(b []byte) []byte { c := append([]byte{}, b...); c[len(c)-1] ^= 1; return c }, // bad CRC
	} {
		if err := os.WriteFile(segs[0], cut(b), 0o644); err != nil {
			t.Fatal(err)
		}
		l, err := Open(dir, 0, Options{})
		if err != nil {
			t.Fatal(err)
		}
		got := replayAll(t, l, 0)
		l.Close()
		if len(got) != 2 || got[1] != "record-0" || got[2] != "record-1" {
			t.Errorf("replayed %v, want records 1 and 2", got)
		}
		// Drop the empty segment the reopen started.
		all, _ := filepath.Glob(filepath.Join(dir, "*.wal"))
		for _, p := range all {
			if p != segs[0] {
				os.Remove(p)
			}
		}
	}
}

// TestFullAndTruncate: past MaxBytes Append is refused; truncating below a
// mark deletes the whole segments under it and makes room again.
func TestFullAndTruncate(t *testing.T) {
	dir := t.TempDir()
	rec := make([]byte, 1000)
	l, err := Open(dir, 0, Options{MaxBytes: 10_000, SegmentBytes: 2000})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var last uint64
	for {
		seq, err := l.Append(rec)
		if errors.Is(err, ErrFull) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		l.Done(seq)
		last = seq
	}
	if last != 9 {
		t.Errorf("took %d records of 1,017 bytes under 10,000, want 9", last)
	}
	if err := l.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := l.Stats()
	if st.Refused != 1 || st.Bytes > 10_000 {
		t.Errorf("stats %+v", st)
	}
	if err := l.Truncate(last + 1); err != nil {
		t.Fatal(err)
	}
	st = l.Stats()
	if st.Segments != 1 || st.Low != last+1 || st.Lag() != 0 {
		t.Errorf("after truncating everything: %+v", st)
	}
	if _, err := l.Append(rec); err != nil {
		t.Errorf("append after truncation: %v", err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.wal"))
	if len(files) != 1 {
		t.Errorf("files left %v", files)
	}
}

// TestReopenKeepsNewestSegment: the syncer starts a segment named by the
// next seq when one fills up, and the records appended while it wrote
// then go into the new segment although their seqs are below its name.
// When nothing is appended after them, the newest segment's name is the
// next seq on reopen: Open must start its own segment under another name
// instead of truncating that one (it did: 1 to 2 records of 720 lost in
// about 4% of TestAppendReplay's runs). The segment is renamed here to
// make that state at once.
func TestReopenKeepsNewestSegment(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, 0, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 4 {
		seq, err := l.Append([]byte(fmt.Sprint("record ", i+1)))
		if err != nil {
			t.Fatal(err)
		}
		l.Done(seq)
		if err := l.Wait(ctx, seq); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// Records 1–4 in a segment named 5, as a rollover after record 4's
	// append and before its write leaves them.
	if err := os.Rename(filepath.Join(dir, fmt.Sprintf("%020d%s", 1, suffix)), filepath.Join(dir, fmt.Sprintf("%020d%s", 5, suffix))); err != nil {
		t.Fatal(err)
	}
	l, err = Open(dir, 0, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got := replayAll(t, l, 0)
	if len(got) != 4 || got[4] != "record 4" {
		t.Fatalf("replayed %v after reopen, want records 1–4", got)
	}
	if seq, _ := l.Append([]byte("x")); seq != 5 {
		t.Errorf("first seq after reopen %d, want 5", seq)
	}
}
