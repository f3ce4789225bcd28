package subset

import (
	"context"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/internal/testkit"
	"github.com/abmesh/abmesh/tracing"
)

// layerTests: fx (the third test, on currency, measured on checkout) is
// susceptible to user experience on checkout, where pay and ship — two
// tests of layer checkout-flow, slices [0, 4000) and [4000, 8000) — and
// gift (the only running test of layer promo) emit it.
func layerTests() []Test {
	ux := []Interference{{KindUserExperience, ScopeMeasure}}
	mk := func(id, svc, layer string, start, end uint32, variants ...string) Test {
		return Test{ID: id, ChangeService: svc, MeasureService: "checkout", Emits: ux, Layer: layer,
			Slice: assign.Slice{Start: start, End: end}, Variants: variants, Metric: "latency_ms", Running: true, Phase: 1, PhaseStart: t0}
	}
	fx := mk("fx", "currency", "", 0, 0, "control", "rounded")
	fx.Emits, fx.Susceptible = nil, ux
	return []Test{
		fx,
		mk("pay", "payment", "checkout-flow", 0, 4000, "control", "one-click"),
		mk("ship", "shipping", "checkout-flow", 4000, 8000, "control", "free-shipping"),
		mk("gift", "gifts", "promo", 0, 10000, "off", "on"),
	}
}

func layerGraph(t *testing.T) *Graph {
	t.Helper()
	g, err := NewGraph([]tracing.Edge{
		{Caller: "checkout", Callee: "currency", Calls: 3}, {Caller: "checkout", Callee: "payment", Calls: 2},
		{Caller: "checkout", Callee: "shipping", Calls: 2}, {Caller: "checkout", Callee: "gifts", Calls: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// TestComputeLayerFactor: the two tests of one layer in fx's subset are
// marked with their layer and sorted together as one factor; the single
// test of another layer stays a factor of its own; layer mates still
// never join each other's subsets.
func TestComputeLayerFactor(t *testing.T) {
	subs, err := Compute(layerTests(), layerGraph(t))
	if err != nil {
		t.Fatal(err)
	}
	fx := subs[0]
	var got [][2]string
	for _, m := range fx.Members {
		got = append(got, [2]string{m.Test, m.Layer})
	}
	want := [][2]string{{"fx", ""}, {"pay", "checkout-flow"}, {"ship", "checkout-flow"}, {"gift", ""}}
	if !slices.Equal(got, want) {
		t.Fatalf("fx members (test, layer) = %v, want %v", got, want)
	}
	if n := len(fx.Factors()); n != 3 {
		t.Errorf("%d factors, want 3", n)
	}
	if l := fx.FactorLabels(); !slices.Equal(l, []string{"fx", "checkout-flow (pay, ship)", "gift"}) {
		t.Errorf("factor labels %q", l)
	}
	for _, s := range subs[1:] {
		if s.Viewpoint != "gift" && len(s.Members) != 1 {
			t.Errorf("%s's subset %v: pay and ship are susceptible to nothing", s.Viewpoint, s.Tests())
		}
	}
}

// layerStack returns a stack over layerTests, running since t0.
func layerStack(t *testing.T, tests []Test) (stack, *testkit.Clock) {
	t.Helper()
	clk := testkit.NewClock(t0)
	s := newStack(WithClock(clk.Now))
	s.SetGraph(layerGraph(t))
	if err := s.SetTests(tests); err != nil {
		t.Fatal(err)
	}
	return s, clk
}

// TestLayerFactorWindow: fx's window has the layer as one factor named by
// the layer, whose levels are the (test, variant) pairs and "outside",
// whose references are each test's control, and whose expected shares
// follow the slices and weights.
func TestLayerFactorWindow(t *testing.T) {
	s, _ := layerStack(t, layerTests())
	w, _ := s.Current("fx")
	var names []string
	for _, m := range w.Members {
		names = append(names, m.Test)
	}
	if !slices.Equal(names, []string{"fx", "checkout-flow", "gift"}) {
		t.Fatalf("factors %v", names)
	}
	lf := w.Members[1]
	wantLevels := []string{"pay/control", "pay/one-click", "ship/control", "ship/free-shipping", OutsideLevel}
	if !lf.IsLayer() || lf.Layer != "checkout-flow" || !slices.Equal(lf.Variants, wantLevels) || lf.Outside() != 4 {
		t.Fatalf("layer factor %+v", lf)
	}
	if lf.Tests[0].Test != "pay" || lf.Tests[1].Slice != (assign.Slice{Start: 4000, End: 8000}) || len(lf.Tests[1].Reasons) == 0 {
		t.Errorf("layer tests %+v", lf.Tests)
	}
	if ref := lf.Reference(); !slices.Equal(ref, []int{-1, 0, -1, 2, -1}) {
		t.Errorf("reference %v", ref)
	}
	if w.Members[0].Reference() != nil || w.Members[2].IsLayer() || w.Members[2].Outside() != -1 {
		t.Errorf("plain members: %+v", w.Members)
	}
	shares, ok := lf.Shares([][]float64{{1, 1}, {3, 1}})
	if want := []float64{0.2, 0.2, 0.3, 0.1, 0.2}; !ok || !approxEqual(shares, want) {
		t.Errorf("shares %v, want %v", shares, want)
	}
	if _, ok := lf.Shares([][]float64{{1, 1}}); ok {
		t.Error("shares with one test's weights missing")
	}

	// Slices that cover the layer leave no "outside" level.
	tests := layerTests()
	tests[2].Slice = assign.Slice{Start: 4000, End: 10000}
	s2, _ := layerStack(t, tests)
	w2, _ := s2.Current("fx")
	if lv := w2.Members[1].Variants; slices.Contains(lv, OutsideLevel) || w2.Members[1].Outside() != -1 {
		t.Errorf("covering slices: levels %v", lv)
	}

	// A test named like the layer: the factor is "layer/<id>".
	tests = layerTests()
	tests[3].ID = "checkout-flow"
	s3, _ := layerStack(t, tests)
	w3, _ := s3.Current("fx")
	if got := w3.Members[1].Test + "," + w3.Members[2].Test; got != "checkout-flow,layer/checkout-flow" {
		t.Errorf("factors with a clash: %s", got)
	}
}

func approxEqual(a, b []float64) bool {
	return slices.EqualFunc(a, b, func(x, y float64) bool { return x-y < 1e-12 && y-x < 1e-12 })
}

// layerHash gives every unit of the counter test its hash variants; out
// lists the "test/unit" pairs outside the test's slice.
func layerHash() sliceHash {
	h := sliceHash{hashTable: hashTable{}, out: map[string]bool{}}
	for _, u := range []string{"u1", "u2", "u3", "u4", "u5", "u6", "u7", "u8", "u9", "u10", "u11"} {
		h.hashTable["fx/"+u] = "rounded"
		h.hashTable["gift/"+u] = "on"
		h.hashTable["pay/"+u] = "one-click"
		h.hashTable["ship/"+u] = "free-shipping"
	}
	h.hashTable["pay/u5"] = "control"
	inPay := []string{"u1", "u5", "u6", "u7", "u10"}
	inShip := []string{"u2", "u8", "u11"}
	for u := range map[string]bool{"u1": true, "u2": true, "u3": true, "u4": true, "u5": true, "u6": true, "u7": true,
		"u8": true, "u9": true, "u10": true, "u11": true} {
		if !slices.Contains(inPay, u) {
			h.out["pay/"+u] = true
		}
		if !slices.Contains(inShip, u) {
			h.out["ship/"+u] = true
		}
	}
	return h
}

// layerObs is an observation of unit u on which fx was served its hash
// variant and checkout measured latency ms.
func layerObs(u string, ms float64) *obsBuilder {
	return newObs(u, time.Minute).serve("fx", "rounded", "currency").latency("checkout", ms)
}

// TestCounterLayerFactor: the third test whose subset holds both layer
// tests counts requests — each in the level of the layer test that holds
// its unit, or "outside" — where it used to exclude all of them as
// not_in_slice.
func TestCounterLayerFactor(t *testing.T) {
	s, _ := layerStack(t, layerTests())
	h := layerHash()
	c := NewCellCounter(s.Windows, h)
	for _, o := range []*tracing.Observation{
		// u1 in pay's slice, pay served: pay/one-click.
		layerObs("u1", 1).serve("pay", "one-click", "payment").build(),
		// u2 in ship's slice, ship off the path, pay served outside its slice: ship/free-shipping.
		layerObs("u2", 2).serve("pay", "control", "payment").reason("not_in_slice").build(),
		// u3 in neither slice, no layer test on the path: outside.
		layerObs("u3", 3).build(),
		// u4 in neither slice, both served outside their slices (as assign spells it): outside.
		layerObs("u4", 4).serve("pay", "control", "payment").reason("NOT_IN_SLICE").serve("ship", "control", "shipping").reason("NOT_IN_SLICE").build(),
		// u5 in pay's slice, pay off the path: its hash variant, pay/control.
		layerObs("u5", 5).serve("ship", "control", "shipping").reason("not_in_slice").build(),
		// u9 outside both, pay served not_targeted: what every unit outside the slice gets; outside.
		layerObs("u9", 9).serve("pay", "control", "payment").reason("not_targeted").build(),
		// excluded: an override of pay.
		layerObs("u6", 99).serve("pay", "control", "payment").reason("override").build(),
		// excluded: two layer tests claim u7.
		layerObs("u7", 99).serve("pay", "one-click", "payment").serve("ship", "free-shipping", "shipping").build(),
		// excluded: ship served control where the hash says free-shipping.
		layerObs("u8", 99).serve("ship", "control", "shipping").build(),
		// excluded: u10 is in pay's slice but was not targeted.
		layerObs("u10", 99).serve("pay", "control", "payment").reason("not_targeted").build(),
		// excluded: conflicting variants of ship.
		layerObs("u11", 99).serve("ship", "free-shipping", "shipping").conflict("ship", "control", "free-shipping").build(),
	} {
		c.ConsumeObservation(o)
	}
	w, _ := s.Current("fx")
	checkCells(t, w, []wantCell{
		{[]string{"rounded", "pay/control", "on"}, 1, 5, 1},
		{[]string{"rounded", "pay/one-click", "on"}, 1, 1, 1},
		{[]string{"rounded", "ship/free-shipping", "on"}, 1, 2, 1},
		{[]string{"rounded", OutsideLevel, "on"}, 3, (3 + 4 + 9) / 3.0, 3},
	})
	want := Quality{Seen: 11, Counted: 6, Override: 1, Mismatch: 2, NotTargeted: 1, Conflict: 1}
	if w.Quality != want {
		t.Errorf("quality\n got %+v\nwant %+v", w.Quality, want)
	}

	// Without a SliceChecker a unit no layer test served cannot be placed;
	// one every layer test said is outside its slice can.
	s2, _ := layerStack(t, layerTests())
	c2 := NewCellCounter(s2.Windows, h.hashTable)
	c2.ConsumeObservation(layerObs("u3", 3).build())
	c2.ConsumeObservation(layerObs("u4", 4).serve("pay", "control", "payment").reason("not_in_slice").serve("ship", "control", "shipping").reason("not_in_slice").build())
	c2.ConsumeObservation(layerObs("u1", 1).serve("pay", "one-click", "payment").build())
	w2, _ := s2.Current("fx")
	checkCells(t, w2, []wantCell{{[]string{"rounded", "pay/one-click", "on"}, 1, 1, 1}, {[]string{"rounded", OutsideLevel, "on"}, 1, 4, 1}})
	if q := w2.Quality; q.NotInSlice != 1 || q.Counted != 2 {
		t.Errorf("without a SliceChecker: quality %+v", q)
	}
}

// TestLayerFactorPersists: a window with a layer factor round-trips
// through a Store and is resumed (same signature); a changed slice opens
// a new window.
func TestLayerFactorPersists(t *testing.T) {
	s, clk := layerStack(t, layerTests())
	c := NewCellCounter(s.Windows, layerHash())
	c.ConsumeObservation(layerObs("u1", 1).serve("pay", "one-click", "payment").build())
	st := NewMemStore()
	ctx := context.Background()
	if err := s.Flush(ctx, st); err != nil {
		t.Fatal(err)
	}
	before, _ := s.Current("fx")

	s2, _ := layerStack(t, layerTests())
	if err := s2.Restore(ctx, st); err != nil {
		t.Fatal(err)
	}
	after, _ := s2.Current("fx")
	if after.Seq != before.Seq || !reflect.DeepEqual(after.Members, before.Members) || after.Quality.Counted != 1 {
		t.Errorf("restored window #%d %+v counted %d, want #%d %+v", after.Seq, after.Members, after.Quality.Counted, before.Seq, before.Members)
	}

	tests := layerTests()
	tests[1].Slice.End = 3000
	clk.Set(t0.Add(time.Hour))
	if err := s.SetTests(tests); err != nil {
		t.Fatal(err)
	}
	if w, _ := s.Current("fx"); w.Seq == before.Seq {
		t.Errorf("a slice change kept window #%d", w.Seq)
	}
}

// TestRenderLayer: `abmesh subsets` marks a layer factor's tests with role
// "layer L", and the DOT legend names the factor with its tests.
func TestRenderLayer(t *testing.T) {
	tests := layerTests()
	subs, err := Compute(tests, layerGraph(t))
	if err != nil {
		t.Fatal(err)
	}
	var tb strings.Builder
	if err := WriteTable(&tb, subs[:1]); err != nil {
		t.Fatal(err)
	}
	var roles []string
	for _, line := range strings.Split(strings.TrimSpace(tb.String()), "\n")[1:] {
		f := strings.Fields(line)
		roles = append(roles, f[1]+"="+strings.Join(f[2:len(f)-5], " "))
	}
	if want := []string{"fx=viewpoint", "pay=layer checkout-flow", "ship=layer checkout-flow", "gift=member"}; !slices.Equal(roles, want) {
		t.Errorf("roles %q, want %q\n%s", roles, want, tb.String())
	}
	var db strings.Builder
	if err := WriteDOT(&db, layerGraph(t), subs[:1], tests); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(db.String(), `[label="fx: fx, checkout-flow (pay, ship), gift"`) {
		t.Errorf("DOT legend does not name the layer factor:\n%s", db.String())
	}
}
