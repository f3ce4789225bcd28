package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/abmesh/abmesh/internal/testkit/daemontest"
	"github.com/abmesh/abmesh/internal/testkit/pgtest"
	pb "github.com/abmesh/abmesh/proto/abmesh/v1"
)

// replicaProc is one abmeshd process (this binary run as abmeshd).
type replicaProc struct {
	cmd        *exec.Cmd
	grpc, http string
}

// metric reads a gauge without labels from the replica's /metrics: its
// value, or -1 when it does not answer or has no such line.
func (r *replicaProc) metric(name string) float64 {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get("http://" + r.http + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				return f
			}
		}
	}
	return -1
}

// leads reads abmesh_leader from the replica's /metrics: 1, 0, or -1 when
// it does not answer.
func (r *replicaProc) leads() int { return int(r.metric("abmesh_leader")) }

// TestKill9OfLeaderReplica runs three abmeshd processes on one PostgreSQL
// (--store), kills the leader with SIGKILL and checks that another
// replica leads within 3 s, that the survivors keep serving Assign, that
// an admin change on one survivor reaches a Watch stream on the other
// within 1 s, and that the new leader opens the windows: after the pause
// and a resume both survivors count into window 2 of the test (window 1
// was the killed leader's) and have adopted the same plan generation.
func TestKill9OfLeaderReplica(t *testing.T) {
	url := pgtest.Start(t).NewDatabase(t)
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var reps []*replicaProc
	for range 3 {
		r := &replicaProc{grpc: daemontest.FreeAddr(t), http: daemontest.FreeAddr(t)}
		r.cmd = exec.CommandContext(ctx, bin, "--store", url, "--data-dir", t.TempDir(), "--listen", r.grpc,
			"--http-listen", r.http, "--otlp-listen", "off", "--log-level", "warn")
		r.cmd.Env = append(os.Environ(), runAsAbmeshd+"=1")
		r.cmd.Stderr = os.Stderr
		if err := r.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = r.cmd.Process.Kill(); _ = r.cmd.Wait() })
		reps = append(reps, r)
	}
	leader := func(not int) int {
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			who, n := -1, 0
			for i, r := range reps {
				if i != not && r.leads() == 1 {
					who, n = i, n+1
				}
			}
			if n > 1 {
				t.Fatalf("%d replicas lead at once", n)
			}
			if n == 1 {
				return who
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatal("no replica leads within 10 s")
		return -1
	}
	first := leader(-1)
	a, b := (first+1)%3, (first+2)%3
	ec := pb.NewExperimentServiceClient(daemontest.Dial(t, reps[first].grpc))
	x := &pb.Experiment{
		Id: "rec", ChangeService: "svc-a", MeasureService: "svc-a", Metric: &pb.Metric{Name: "latency_ms"},
		Variants: []*pb.Variant{{Name: "control", Weight: 50}, {Name: "treatment", Weight: 50}},
		Plan:     &pb.AnalysisPlan{MinimumDetectableEffect: 1},
	}
	cctx, ccancel := context.WithTimeout(ctx, 20*time.Second)
	defer ccancel()
	if _, err := ec.CreateExperiment(cctx, &pb.CreateExperimentRequest{Experiment: x}, grpc.WaitForReady(true)); err != nil {
		t.Fatalf("create on the leader (replica %d): %v", first, err)
	}
	if _, err := ec.StartExperiment(cctx, &pb.StartExperimentRequest{Id: "rec"}); err != nil {
		t.Fatalf("start on the leader (replica %d): %v", first, err)
	}
	watch, err := pb.NewAssignmentServiceClient(daemontest.Dial(t, reps[b].grpc)).Watch(ctx, &pb.WatchRequest{}, grpc.WaitForReady(true))
	if err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	if err := reps[first].cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = reps[first].cmd.Wait()
	next := leader(first)
	t.Logf("replica %d killed; replica %d leads after %v", first, next, time.Since(start))
	if time.Since(start) > 3*time.Second {
		t.Errorf("hand-over took %v, want within 3 s", time.Since(start))
	}
	actx, acancel := context.WithTimeout(ctx, 10*time.Second)
	defer acancel()
	for _, i := range []int{a, b} {
		r, err := pb.NewAssignmentServiceClient(daemontest.Dial(t, reps[i].grpc)).Assign(actx, &pb.AssignRequest{UnitId: "user-42"}, grpc.WaitForReady(true))
		if err != nil || len(r.GetAssignments()) != 1 {
			t.Fatalf("survivor %d: Assign = %v, %v", i, r, err)
		}
	}
	start = time.Now()
	pctx, pcancel := context.WithTimeout(ctx, 10*time.Second)
	defer pcancel()
	if _, err := pb.NewExperimentServiceClient(daemontest.Dial(t, reps[a].grpc)).PauseExperiment(pctx, &pb.PauseExperimentRequest{Id: "rec"}); err != nil {
		t.Fatalf("pause on survivor %d: %v", a, err)
	}
	// Each step is bounded on its own, so that a failure names the step.
	paused := make(chan error, 1)
	go func() {
		for {
			s, err := watch.Recv()
			if err != nil {
				paused <- err
				return
			}
			if e := s.GetExperiments(); len(e) == 1 && e[0].GetStatus() == pb.ExperimentStatus_EXPERIMENT_STATUS_PAUSED {
				paused <- nil
				return
			}
		}
	}()
	select {
	case err := <-paused:
		if err != nil {
			t.Fatalf("the Watch on survivor %d: %v", b, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("the Watch on survivor %d did not see the pause on survivor %d within 10 s", b, a)
	}
	t.Logf("pause on survivor %d seen by a Watch on survivor %d after %v", a, b, time.Since(start))
	if time.Since(start) > time.Second {
		t.Errorf("the Watch saw the pause after %v, want within 1 s", time.Since(start))
	}

	if _, err := pb.NewExperimentServiceClient(daemontest.Dial(t, reps[a].grpc)).StartExperiment(ctx, &pb.StartExperimentRequest{Id: "rec"}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		var gens []float64
		for _, i := range []int{a, b} {
			if _, err := pb.NewReportServiceClient(daemontest.Dial(t, reps[i].grpc)).GetReport(ctx, &pb.GetReportRequest{TestId: "rec", Window: 2}); err == nil {
				gens = append(gens, reps[i].metric("abmesh_window_plan_generation"))
			}
		}
		if len(gens) == 2 && gens[0] == gens[1] && gens[0] > 0 {
			t.Logf("both survivors count into rec's window 2, plan generation %v", gens[0])
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("within 5 s of the resume, survivors with rec's window 2 at plan generations %v, want both at one", gens)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
