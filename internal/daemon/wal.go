package daemon

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/abmesh/abmesh/internal/adapter/bolt"
	"github.com/abmesh/abmesh/internal/wal"
	"github.com/abmesh/abmesh/subset"
	"github.com/abmesh/abmesh/tracing"
	"github.com/abmesh/abmesh/tracing/otlp"
	"github.com/abmesh/abmesh/tracing/otlpreceiver"
)

// DefaultWALMaxBytes bounds the write-ahead log's disk use by default.
const DefaultWALMaxBytes = 2 << 30

// WALConfig configures the write-ahead log of accepted OTLP requests
// (package wal), kept in the data directory's wal/ folder. It is on
// whenever the daemon has a data directory and an OTLP listener: an
// Export is acknowledged only once its bytes are fsynced (one fsync
// covers every request appended meanwhile), the log is replayed into the
// assembler on start, and whole segments are deleted once the cells that
// include their spans are flushed.
type WALConfig struct {
	// Off turns the log off (--wal=false): a crash then loses the spans
	// in flight and the counts since the last flush.
	Off bool
	// MaxBytes bounds the log on disk (--wal-max-bytes); past it Export
	// answers RESOURCE_EXHAUSTED with RetryInfo until a flush frees
	// segments.
	MaxBytes int64
	// NoClaims turns off, with a PostgreSQL store, the claims between
	// replicas (--wal-claims=false; see claimTail): a request a replica
	// logged but did not acknowledge before a crash, re-sent by the
	// exporter to another replica, is then counted by both. For measuring
	// that hazard only.
	NoClaims bool
}

func (c WALConfig) validate(maxMessage int) error {
	if c.MaxBytes != 0 && c.MaxBytes < 4*int64(max(maxMessage, 1)) {
		return fmt.Errorf("--wal-max-bytes %d: want at least 4 × --otlp-max-message-bytes (%d)", c.MaxBytes, 4*maxMessage)
	}
	return nil
}

// walBlob is the store blob holding the log's checkpoint, written with
// the cells it describes.
const walBlob = "wal/checkpoint"

// walSegmentBytes is the size of a segment: a sixteenth of the bound, at
// most 64 MiB, so that truncation frees space in small steps.
func walSegmentBytes(maxBytes int64) int64 {
	return min(wal.DefaultSegmentBytes, max(maxBytes/16, 1<<20))
}

// openWAL opens the write-ahead log in dir/wal and replays, into the
// assembler, every record from the stored checkpoint's mark, with the
// checkpoint's counted traces resumed so that none is counted twice.
func (d *Daemon) openWAL(dir string) error {
	low, counted, err := d.loadCheckpoint()
	if err != nil {
		return err
	}
	d.assembler.Resume(counted)
	l, err := wal.Open(filepath.Join(dir, "wal"), low, wal.Options{MaxBytes: d.cfg.WAL.MaxBytes, SegmentBytes: walSegmentBytes(d.cfg.WAL.MaxBytes)})
	if err != nil {
		return err
	}
	d.wal = l
	if d.pg != nil && !d.cfg.WAL.NoClaims {
		d.claimTail(l, low)
	}
	start := time.Now()
	rec := otlpreceiver.New(d.assembler)
	records, bytes := 0, 0
	err = l.Replay(low, func(seq uint64, data []byte) error {
		records++
		bytes += len(data)
		return rec.Replay(seq, data, func() { d.assembler.Flush() })
	})
	if err != nil {
		return fmt.Errorf("replay the write-ahead log: %w", err)
	}
	st := d.assembler.Stats()
	d.log.Info("write-ahead log replayed", "records", records, "bytes", bytes, "from", low, "counted_traces_skipped", len(counted),
		"spans_accepted", st.SpansAccepted, "spans_late", st.SpansLate, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// claimWait bounds how long a restarting replica waits for the other
// replicas' answers to its claim.
const claimWait = 5 * time.Second

// claimExclusion is how long a replica drops spans of a trace another
// replica claimed: longer than an exporter retries a request (the
// OpenTelemetry exporters' default is 5 minutes).
const claimExclusion = 10 * time.Minute

// claimTail runs, with a PostgreSQL store, before the log's records from
// low are replayed: records the replica wrote but may not have
// acknowledged before it stopped may have been re-sent by the exporter
// to other replicas meanwhile. It claims the trace ids of those records
// (postgres.DB.ClaimTraces); every other live replica answers with the
// ids it holds, in flight or counted (tracing.Assembler.Claim), and drops
// spans of the others from then on. The traces held elsewhere are made
// late here before the replay, so each trace is counted by one replica.
// When the claim fails, or a live replica does not answer within
// claimWait, the records are replayed as they are: nothing acknowledged
// is lost, and what that replica holds may be counted twice (logged).
func (d *Daemon) claimTail(l *wal.Log, low uint64) {
	start := time.Now()
	seen := map[tracing.TraceID]bool{}
	var ids [][16]byte
	var last uint64
	b := &tracing.Batch{Limits: d.assembler.SpanLimits()}
	err := l.Replay(low, func(seq uint64, data []byte) error {
		b.Reset()
		if otlp.DecodeSummaries(data, b) == nil {
			for i := range b.Summaries {
				if id := b.Summaries[i].TraceID; !seen[id] {
					seen[id] = true
					ids = append(ids, id)
				}
			}
		}
		last = seq
		return nil
	})
	if err != nil || len(ids) == 0 {
		return // the replay reports a read error
	}
	ctx, cancel := context.WithTimeout(d.life, claimWait+5*time.Second)
	defer cancel()
	held, missing, err := d.pg.ClaimTraces(ctx, d.replica, ids, claimWait)
	if err != nil {
		d.log.Error("claim the write-ahead log's traces; replaying them all (a trace another replica counted is counted twice)", "err", err)
		return
	}
	skip := make([]tracing.CountedTrace, 0, len(held))
	for id := range held {
		skip = append(skip, tracing.CountedTrace{ID: id, Seq: last})
	}
	d.assembler.Resume(skip)
	d.claimed.Store(int64(len(ids)))
	d.heldElsewhere.Store(int64(len(held)))
	d.log.Info("write-ahead log's traces claimed", "traces", len(ids), "held_elsewhere", len(held), "took", time.Since(start).Round(time.Millisecond))
	if len(missing) > 0 {
		d.log.Warn("replicas did not answer the claim; what they hold of the log's traces may be counted twice", "replicas", missing, "waited", claimWait)
	}
}

// answerClaims answers, with a PostgreSQL store, the claims of replicas
// restarting (claimTail) from the assembler's memory. A replica without
// an OTLP listener answers too (holding nothing): it is live, so a
// restarting replica waits for its answer.
func (d *Daemon) answerClaims() {
	if d.pg == nil || d.cfg.WAL.NoClaims {
		return
	}
	d.loop(func() {
		d.pg.AnswerClaims(d.life, d.replica, func(ids [][16]byte) [][16]byte {
			tids := make([]tracing.TraceID, len(ids))
			for i, id := range ids {
				tids[i] = id
			}
			held := d.assembler.Claim(tids, claimExclusion)
			out := make([][16]byte, len(held))
			for i, id := range held {
				out[i] = id
			}
			d.claimsAnswered.Add(1)
			return out
		}, func(err error) { d.log.Error("answer trace claims", "err", err) })
	})
}

// flushCheckpoint saves the changed windows, the graph and the log's
// checkpoint in one transaction, taken while no observation is being
// counted, once every log record the checkpoint refers to is durable;
// then it deletes the log segments below the checkpoint's mark. It
// returns the rows saved.
func (d *Daemon) flushCheckpoint() (int, error) {
	floor := d.wal.Pending()
	var (
		p     *subset.Pending
		graph []byte
		cp    []byte
		low   uint64
		gerr  error
	)
	d.assembler.Checkpoint(floor, func(l uint64, counted []tracing.CountedTrace) {
		p = d.windows.TakePending()
		graph, gerr = d.graph.MarshalJSON()
		cp, low = encodeCheckpoint(l, counted), l
	})
	if gerr != nil {
		p.Failed()
		return 0, fmt.Errorf("flush service graph: %w", gerr)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	err := d.wal.Sync(sctx)
	cancel()
	if err != nil {
		p.Failed()
		return 0, fmt.Errorf("flush: write-ahead log: %w", err)
	}
	blobs := map[string][]byte{d.blobName(graphBlob): graph, d.blobName(walBlob): cp}
	ctx, cancel := context.WithTimeout(context.Background(), saveTimeout(saveRows(p.Saves)+len(blobs)))
	defer cancel()
	if err := d.win.SaveWindows(ctx, p.Saves, blobs); err != nil {
		p.Failed()
		d.log.Error("flush cells", "err", err)
		return 0, err
	}
	rows := d.metrics.saved(p.Saves...)
	if err := d.wal.Truncate(low); err != nil {
		d.log.Error("truncate write-ahead log", "err", err)
		return rows, err
	}
	return rows, nil
}

// loadCheckpoint reads the stored checkpoint: (0, nil) when none.
func (d *Daemon) loadCheckpoint() (uint64, []tracing.CountedTrace, error) {
	b, err := d.db.GetBlob(d.blobName(walBlob))
	if errors.Is(err, bolt.ErrNoBlob) {
		return 0, nil, nil
	}
	if err != nil {
		return 0, nil, err
	}
	low, counted, err := decodeCheckpoint(b)
	if err != nil {
		return 0, nil, fmt.Errorf("stored write-ahead log checkpoint: %w", err)
	}
	return low, counted, nil
}

// A checkpoint is "abmwal1\n", the mark (uint64), the number of counted
// traces (uint32), then each trace's id (16 bytes) and seq (uint64), all
// big-endian.
const checkpointMagic = "abmwal1\n"

func encodeCheckpoint(low uint64, counted []tracing.CountedTrace) []byte {
	b := make([]byte, 0, len(checkpointMagic)+12+24*len(counted))
	b = append(b, checkpointMagic...)
	b = binary.BigEndian.AppendUint64(b, low)
	b = binary.BigEndian.AppendUint32(b, uint32(len(counted)))
	for _, c := range counted {
		b = append(b, c.ID[:]...)
		b = binary.BigEndian.AppendUint64(b, c.Seq)
	}
	return b
}

func decodeCheckpoint(b []byte) (uint64, []tracing.CountedTrace, error) {
	const head = len(checkpointMagic) + 12
	if len(b) < head || string(b[:len(checkpointMagic)]) != checkpointMagic {
		return 0, nil, errors.New("not a checkpoint")
	}
	low := binary.BigEndian.Uint64(b[len(checkpointMagic):])
	n := int(binary.BigEndian.Uint32(b[len(checkpointMagic)+8:]))
	if len(b) != head+24*n {
		return 0, nil, fmt.Errorf("%d bytes for %d traces", len(b), n)
	}
	counted := make([]tracing.CountedTrace, n)
	for i := range counted {
		r := b[head+24*i:]
		copy(counted[i].ID[:], r[:16])
		counted[i].Seq = binary.BigEndian.Uint64(r[16:])
	}
	return low, counted, nil
}
