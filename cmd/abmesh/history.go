package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	pb "github.com/abmesh/abmesh/proto/abmesh/v1"
)

// historyCmd lists the audit log of admin changes, newest first.
func historyCmd(fs *flag.FlagSet) body {
	kind := fs.String("kind", "", "only changes of this `kind`: experiment, layer or override")
	limit := fs.Int("limit", 50, "show at most `N` changes, newest first (0: all)")
	out := outputFlag(fs, "table", "json")
	return func(ctx context.Context, r *request) error {
		if len(r.args) > 1 {
			return usageErrorf("want at most one experiment or layer name")
		}
		if *limit < 0 {
			return usageErrorf("--limit must be 0 or more")
		}
		req := &pb.ListChangesRequest{Kind: *kind}
		if len(r.args) == 1 {
			req.Name = r.args[0]
		}
		changes, err := listChanges(ctx, r.api.experiment, req, *limit)
		if err != nil {
			return err
		}
		if *out == "json" {
			return printJSON(r.stdout, &pb.ListChangesResponse{Changes: changes})
		}
		return printHistory(r, changes)
	}
}

// listChanges pages through ListChanges until it has limit changes (all
// of them when limit is 0).
func listChanges(ctx context.Context, c pb.ExperimentServiceClient, req *pb.ListChangesRequest, limit int) ([]*pb.Change, error) {
	var all []*pb.Change
	for {
		req.PageSize = 1000
		if limit > 0 {
			req.PageSize = int32(min(limit-len(all), 1000))
		}
		resp, err := c.ListChanges(ctx, req)
		if err != nil {
			return nil, err
		}
		all = append(all, resp.GetChanges()...)
		req.PageToken = resp.GetNextPageToken()
		if req.PageToken == "" || (limit > 0 && len(all) >= limit) {
			return all, nil
		}
	}
}

// printHistory prints changes as a table: sequence, time, actor, action,
// name and what changed.
func printHistory(r *request, changes []*pb.Change) error {
	if len(changes) == 0 {
		fmt.Fprintln(r.stdout, "no changes recorded")
		return nil
	}
	tw := table(r.stdout)
	fmt.Fprintln(tw, "SEQ\tTIME\tACTOR\tACTION\tNAME\tCHANGES")
	for _, c := range changes {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", c.GetSeq(), c.GetTime().AsTime().UTC().Format(time.RFC3339),
			actorString(c.GetActor()), c.GetAction(), c.GetName(), changeSummary(c))
	}
	return tw.Flush()
}

// actorString renders an actor as name@peer; a nameless one by its kind.
func actorString(a *pb.Actor) string {
	name := a.GetName()
	if name == "" {
		name = "(" + a.GetKind() + ")"
	}
	if a.GetPeer() == "" {
		return name
	}
	return name + "@" + a.GetPeer()
}

// changeSummary is a compact diff of a change: "created", "deleted", or
// each top-level field that differs as "field: old→new" (a dash for an
// absent value, "…" for a list or an object). update_time, which every
// update moves, is left out.
func changeSummary(c *pb.Change) string {
	switch {
	case c.GetBeforeJson() == "":
		return "created"
	case c.GetAfterJson() == "":
		return "deleted"
	}
	var before, after map[string]any
	if json.Unmarshal([]byte(c.GetBeforeJson()), &before) != nil || json.Unmarshal([]byte(c.GetAfterJson()), &after) != nil {
		return "?"
	}
	keys := slices.Sorted(maps.Keys(before))
	for k := range after {
		if _, ok := before[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var parts []string
	for _, k := range keys {
		b, a := before[k], after[k]
		if k == "update_time" || jsonEqual(b, a) {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s: %s→%s", k, compactValue(b), compactValue(a)))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// compactValue renders a JSON value short: scalars as they are, a dash
// for none, "…" for a list or an object.
func compactValue(v any) string {
	switch v := v.(type) {
	case nil:
		return "-"
	case map[string]any, []any:
		return "…"
	case string:
		return strings.TrimPrefix(v, "EXPERIMENT_STATUS_")
	default:
		return fmt.Sprint(v)
	}
}
