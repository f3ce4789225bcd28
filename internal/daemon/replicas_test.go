package daemon_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/assign/client"
	"github.com/abmesh/abmesh/internal/daemon"
	"github.com/abmesh/abmesh/internal/testkit"
	"github.com/abmesh/abmesh/internal/testkit/daemontest"
	"github.com/abmesh/abmesh/internal/testkit/pgtest"
	pb "github.com/abmesh/abmesh/proto/abmesh/v1"
)

// Three abmeshd on one PostgreSQL (--store): an admin change on replica 1
// reaches a Watch stream of replica 3, and the Go SDK watching replica 3
// (assign/client, evaluating locally), within 1 s; replicas assign alike,
// and of two conflicting updates sent at once to replicas 1 and 2 one
// wins and the other is ABORTED naming the resource versions.
func TestReplicasShareOnePostgres(t *testing.T) {
	url := pgtest.Start(t).NewDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var ecs []pb.ExperimentServiceClient
	var acs []pb.AssignmentServiceClient
	var addrs []string
	for range 3 {
		d, conn := startDaemon(t, daemontest.Store(url))
		ecs = append(ecs, pb.NewExperimentServiceClient(conn))
		acs = append(acs, pb.NewAssignmentServiceClient(conn))
		addrs = append(addrs, d.Addr())
	}
	sdk, err := client.New(addrs[2], client.WithService("svc-a"))
	if err != nil {
		t.Fatal(err)
	}
	defer sdk.Close()
	if err := sdk.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	sdkSaw := make(chan time.Duration, 1)
	stream, err := acs[2].Watch(ctx, &pb.WatchRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	go func() {
		for ctx.Err() == nil {
			if x, ok := sdk.Engine().Experiment("rec"); ok && x.Status == assign.StatusRunning {
				sdkSaw <- time.Since(start)
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	if _, err := ecs[0].CreateExperiment(ctx, &pb.CreateExperimentRequest{Experiment: exp("rec")}); err != nil {
		t.Fatal(err)
	}
	if _, err := ecs[0].StartExperiment(ctx, &pb.StartExperimentRequest{Id: "rec"}); err != nil {
		t.Fatal(err)
	}
	for {
		s, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if len(s.GetExperiments()) == 1 && s.GetExperiments()[0].GetStatus() == pb.ExperimentStatus_EXPERIMENT_STATUS_RUNNING {
			break
		}
	}
	took := time.Since(start)
	t.Logf("create+start on replica 1 seen by a Watch on replica 3 after %v", took)
	if took > time.Second {
		t.Errorf("replica 3's Watch saw the change after %v, want within 1 s", took)
	}
	select {
	case took := <-sdkSaw:
		t.Logf("the SDK watching replica 3 evaluates rec as running %v after the create+start on replica 1", took)
		if took > time.Second {
			t.Errorf("the SDK watching replica 3 saw the change after %v, want within 1 s", took)
		}
	case <-time.After(time.Second):
		t.Errorf("the SDK watching replica 3 did not see rec running within 1 s of the Watch stream")
	}
	// Replica 2 reloads on its own notification: it may still be one
	// version behind replica 3, so each replica is asked until it answers
	// at the start's version (within the same 1 s).
	var variants []string
	for i, ac := range acs {
		var r *pb.AssignResponse
		deadline := start.Add(time.Second)
		for {
			var err error
			if r, err = ac.Assign(ctx, &pb.AssignRequest{UnitId: "user-42"}); err != nil {
				t.Fatalf("replica %d: assign: %v", i+1, err)
			}
			if len(r.GetAssignments()) == 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("replica %d assigns %v 1 s after the start on replica 1, want rec's variant", i+1, r)
			}
			time.Sleep(5 * time.Millisecond)
		}
		variants = append(variants, fmt.Sprint(r.GetAssignments()[0].GetVariant(), "@", r.GetConfigVersion()))
	}
	if variants[0] != variants[1] || variants[1] != variants[2] {
		t.Errorf("replicas assign user-42 differently: %v", variants)
	}

	// Two updates sent at once race: one wins and the other is ABORTED,
	// unless the first was committed and seen by the other replica before
	// the second began (then both are applied, in order). Either way
	// nothing is lost: every acknowledged update is in the audit log.
	ok, conflicts := 0, 0
	for round := range 10 {
		errs := make([]error, 2)
		var wg sync.WaitGroup
		for i := range 2 {
			wg.Go(func() {
				x := exp("rec")
				x.Description = fmt.Sprintf("round %d by replica %d", round, i+1)
				_, errs[i] = ecs[i].UpdateExperiment(ctx, &pb.UpdateExperimentRequest{Experiment: x})
			})
		}
		wg.Wait()
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case status.Code(err) == codes.Aborted && strings.Contains(err.Error(), "expected resource version"):
				conflicts++
			default:
				t.Fatalf("round %d: %v", round, err)
			}
		}
	}
	t.Logf("10 rounds of 2 concurrent updates: %d applied, %d aborted", ok, conflicts)
	if conflicts == 0 || ok < 10 {
		t.Errorf("%d applied, %d aborted: want every round to apply at least one and some to conflict", ok, conflicts)
	}
	changes, err := ecs[2].ListChanges(ctx, &pb.ListChangesRequest{Name: "rec", PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	updates := 0
	for _, c := range changes.GetChanges() {
		if c.GetAction() == "experiment.update" {
			updates++
		}
	}
	if updates != ok {
		t.Errorf("audit log has %d updates, %d were acknowledged", updates, ok)
	}
}

func TestUnreachablePostgresNamesAddress(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cfg := daemontest.Config(t, daemontest.Store("postgres://abmesh@"+addr+"/abmesh?connect_timeout=2"))
	d, err := daemon.Start(context.Background(), cfg)
	if err == nil {
		d.Stop()
		t.Fatal("started with no PostgreSQL")
	}
	if !strings.Contains(err.Error(), addr) {
		t.Errorf("err = %v, want it to name %s", err, addr)
	}
	cfg.Store = "mysql://x"
	if _, err := daemon.Start(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "--store") {
		t.Errorf("non-PostgreSQL --store: err = %v", err)
	}
}

// PostgreSQL stops under two replicas: both keep serving Assign and their
// Watch streams from the last config, a write fails naming the server, and
// once it is back (after 3 s down, past the listeners' longest reconnect
// wait) a change on one replica reaches the other's Watch within 1 s of
// being written.
func TestPostgresLostWhileRunning(t *testing.T) {
	srv := pgtest.Start(t)
	url := srv.NewDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, c1 := startDaemon(t, daemontest.Store(url))
	_, c2 := startDaemon(t, daemontest.Store(url))
	ec1 := pb.NewExperimentServiceClient(c1)
	if _, err := ec1.CreateExperiment(ctx, &pb.CreateExperimentRequest{Experiment: exp("rec")}); err != nil {
		t.Fatal(err)
	}
	if _, err := ec1.StartExperiment(ctx, &pb.StartExperimentRequest{Id: "rec"}); err != nil {
		t.Fatal(err)
	}
	ac2 := pb.NewAssignmentServiceClient(c2)
	watch, err := ac2.Watch(ctx, &pb.WatchRequest{})
	if err != nil {
		t.Fatal(err)
	}
	waitFor := func(status pb.ExperimentStatus) {
		t.Helper()
		for {
			s, err := watch.Recv()
			if err != nil {
				t.Fatal(err)
			}
			if e := s.GetExperiments(); len(e) == 1 && e[0].GetStatus() == status {
				return
			}
		}
	}
	waitFor(pb.ExperimentStatus_EXPERIMENT_STATUS_RUNNING)

	srv.Stop()
	for _, ac := range []pb.AssignmentServiceClient{pb.NewAssignmentServiceClient(c1), ac2} {
		r, err := ac.Assign(ctx, &pb.AssignRequest{UnitId: "user-42"})
		if err != nil || len(r.GetAssignments()) != 1 {
			t.Fatalf("Assign with PostgreSQL down = %v, %v", r, err)
		}
	}
	_, err = ec1.PauseExperiment(ctx, &pb.PauseExperimentRequest{Id: "rec"})
	if err == nil || !strings.Contains(err.Error(), "PostgreSQL at "+srv.Addr()) {
		t.Fatalf("a write with PostgreSQL down: err = %v, want one naming %s", err, srv.Addr())
	}

	// Down long enough for the replicas' listeners to back off to their
	// longest wait between reconnects.
	time.Sleep(3 * time.Second)
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	var written time.Time
	testkit.Eventually(t, "a write once PostgreSQL is back", func() bool {
		written = time.Now()
		_, err := ec1.PauseExperiment(ctx, &pb.PauseExperimentRequest{Id: "rec"})
		return err == nil
	})
	waitFor(pb.ExperimentStatus_EXPERIMENT_STATUS_PAUSED)
	took := time.Since(written)
	t.Logf("after PostgreSQL came back, replica 2's Watch saw the pause %v after it was written", took)
	if took > time.Second {
		t.Errorf("replica 2's Watch saw the pause %v after it was written (PostgreSQL back), want within 1 s", took)
	}
}
