package grpcapi

import (
	"context"
	"slices"
	"strconv"
	"unicode"
	"unicode/utf8"

	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"

	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/internal/auth"
	"github.com/abmesh/abmesh/internal/edge/protoconv"
	pb "github.com/abmesh/abmesh/proto/abmesh/v1"
)

// ActorHeader is the request metadata key in which a caller names itself
// for the audit log when abmeshd does not authenticate callers: the name
// is self-declared, and the audit log records it with the caller's
// address. With authentication on it is ignored.
const ActorHeader = "x-abmesh-actor"

// actorKinds are the audit log's actor kinds of the identity kinds.
var actorKinds = map[string]string{auth.KindToken: assign.ActorToken, auth.KindCertificate: assign.ActorCertificate}

// maxActorLen bounds an actor name in bytes.
const maxActorLen = 128

// withActor returns ctx carrying the audit actor of the call and the peer
// address: the authenticated identity (auth.FromContext) when there is
// one, else the ActorHeader name (kind declared; anonymous without one).
// A declared name that is too long or not printable is InvalidArgument.
func withActor(ctx context.Context) (context.Context, error) {
	a := assign.Actor{Kind: assign.ActorAnonymous}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		a.Peer = p.Addr.String()
	}
	if id, ok := auth.FromContext(ctx); ok {
		a.Kind, a.Name = actorKinds[id.Kind], id.Name
		return assign.WithActor(ctx, a), nil
	}
	if v := metadata.ValueFromIncomingContext(ctx, ActorHeader); len(v) > 0 && v[0] != "" {
		if len(v[0]) > maxActorLen || !utf8.ValidString(v[0]) || !allPrintable(v[0]) {
			return nil, invalid(ActorHeader, "%q must be printable UTF-8 of at most %d bytes", clip(v[0]), maxActorLen)
		}
		a.Kind, a.Name = assign.ActorDeclared, v[0]
	}
	return assign.WithActor(ctx, a), nil
}

func allPrintable(s string) bool {
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// Paging of ListChanges.
const (
	defaultChangesPage = 100
	maxChangesPage     = 1000
)

// ListChanges returns the audit log, newest first, filtered by name and
// kind, one page at a time. The page token is the sequence number the
// next page starts below.
func (s *Experiments) ListChanges(ctx context.Context, req *pb.ListChangesRequest) (*pb.ListChangesResponse, error) {
	q, err := changesQuery(req)
	if err != nil {
		return nil, err
	}
	size := q.Limit
	q.Limit++ // one more tells whether there is a next page
	es, err := s.reg.Changes(ctx, q)
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &pb.ListChangesResponse{}
	if len(es) > size {
		es = es[:size]
		resp.NextPageToken = strconv.FormatUint(es[size-1].Seq, 10)
	}
	for i := range es {
		c, err := protoconv.AuditEntryToProto(&es[i])
		if err != nil {
			return nil, toStatus(err)
		}
		resp.Changes = append(resp.Changes, c)
	}
	return resp, nil
}

// changesQuery validates a ListChanges request into an audit query.
func changesQuery(req *pb.ListChangesRequest) (assign.AuditQuery, error) {
	q := assign.AuditQuery{Name: req.GetName(), Kind: req.GetKind(), Limit: int(req.GetPageSize())}
	if q.Name != "" && !assign.ValidID(q.Name) {
		return q, invalid("name", "%q is not a valid id (lowercase letters, digits and '-', at most 63)", clip(q.Name))
	}
	if q.Kind != "" && !slices.Contains(assign.AuditKinds, q.Kind) {
		return q, invalid("kind", "%q is not one of %q", clip(q.Kind), assign.AuditKinds)
	}
	switch {
	case q.Limit < 0 || q.Limit > maxChangesPage:
		return q, invalid("page_size", "%d is not between 0 and %d", q.Limit, maxChangesPage)
	case q.Limit == 0:
		q.Limit = defaultChangesPage
	}
	if t := req.GetPageToken(); t != "" {
		seq, err := strconv.ParseUint(t, 10, 64)
		if err != nil || seq == 0 {
			return q, invalid("page_token", "%q is not a token of a previous response", clip(t))
		}
		q.Before = seq
	}
	return q, nil
}
