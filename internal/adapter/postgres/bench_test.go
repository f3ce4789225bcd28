package postgres

import (
	"context"
	"flag"
	"fmt"
	"testing"

	"github.com/abmesh/abmesh/internal/testkit/pgtest"
	"github.com/abmesh/abmesh/subset"
)

var benchUnits = flag.Int("bench-units", 100_000, "units per flush in BenchmarkSaveUnits (make bench-scaling: 1,000,000)")

// BenchmarkSaveUnits is one replica's flush of one window whose units
// all changed (-bench-units of them, default 100,000), into a PostgreSQL
// server on loopback with its durability defaults (pgtest.StartDurable:
// fsync, synchronous_commit and full_page_writes on, data on this
// machine's disk). insert is a window's first flush (every unit row new),
// update a later one rewriting every row; merge is a report's read of
// the window (MergedWindow: its rows read and merged). Besides the time
// per flush it reports rows/s, the WAL PostgreSQL wrote per flush and per
// row (pg_current_wal_lsn before and after) and, for insert, the table
// and index bytes per unit row.
func BenchmarkSaveUnits(b *testing.B) {
	ctx := context.Background()
	d, err := Open(ctx, pgtest.StartDurable(b).NewDatabase(b))
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	units := make([]subset.UnitState, *benchUnits)
	for i := range units {
		units[i] = subset.UnitState{Key: subset.UnitKey(fmt.Sprint("user-", i)), Cell: uint64(i % 4), Sum: float64(i), Requests: 3}
	}
	st := d.Windows("r1")
	save := func(b *testing.B, seq int) {
		w := subset.WindowCells{Viewpoint: "rec", Seq: seq}
		if err := st.SaveWindow(ctx, w, subset.UnitChanges{Put: units}); err != nil {
			b.Fatal(err)
		}
	}
	lsn := func(b *testing.B) string {
		var l string
		if err := d.pool.QueryRow(ctx, `SELECT pg_current_wal_lsn()::text`).Scan(&l); err != nil {
			b.Fatal(err)
		}
		return l
	}
	walSince := func(b *testing.B, from string) float64 {
		var n float64
		if err := d.pool.QueryRow(ctx, `SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1::pg_lsn)`, from).Scan(&n); err != nil {
			b.Fatal(err)
		}
		return n
	}
	report := func(b *testing.B, wal float64) {
		rows := float64(b.N * len(units))
		b.ReportMetric(rows/b.Elapsed().Seconds(), "rows/s")
		b.ReportMetric(wal/float64(b.N)/1e6, "WAL-MB/flush")
		b.ReportMetric(wal/rows, "WAL-B/row")
	}
	seq := 0
	b.Run(fmt.Sprintf("insert-%d", len(units)), func(b *testing.B) {
		from := lsn(b)
		for b.Loop() {
			seq++
			save(b, seq)
		}
		report(b, walSince(b, from))
		var size float64
		if err := d.pool.QueryRow(ctx, `SELECT pg_total_relation_size('units')`).Scan(&size); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(size/float64(seq*len(units)), "table-B/row")
	})
	b.Run(fmt.Sprintf("update-%d", len(units)), func(b *testing.B) {
		seq++
		save(b, seq) // the window's first flush, not measured
		from := lsn(b)
		for b.Loop() {
			save(b, seq)
		}
		report(b, walSince(b, from))
	})
	// A report's read of that window: every replica's rows (here one
	// replica's) read and merged (MergedWindow).
	b.Run(fmt.Sprintf("merge-%d", len(units)), func(b *testing.B) {
		for b.Loop() {
			if _, ok, err := st.MergedWindow(ctx, "rec", seq); err != nil || !ok {
				b.Fatalf("merged window: %v %v", ok, err)
			}
		}
		b.ReportMetric(float64(b.N*len(units))/b.Elapsed().Seconds(), "rows/s")
	})
}
