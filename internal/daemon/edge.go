package daemon

import (
	"net/http"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	authz "github.com/abmesh/abmesh/internal/auth"
	"github.com/abmesh/abmesh/internal/edge/forwardauth"
	"github.com/abmesh/abmesh/internal/edge/grpcapi"
)

// startEdge serves forward-auth: Envoy's gRPC ext_authz on the gRPC API
// (always), and the HTTP endpoint on EdgeListen unless it is off. Both
// assign through the Assign RPC's evaluation.
func (d *Daemon) startEdge(assignment *grpcapi.Assignment) error {
	auth := forwardauth.New(d.cfg.Edge, assignment)
	authv3.RegisterAuthorizationServer(d.grpc, forwardauth.NewExtAuthz(auth))
	if d.cfg.EdgeListen == "off" {
		return nil
	}
	var err error
	if d.edgeLis, err = d.listen("--edge-listen", d.cfg.EdgeListen); err != nil {
		return err
	}
	// Proxies keep connections to the endpoint open between requests.
	h := d.guardHTTP(authz.Client, EdgeTokenHeader, forwardauth.NewHandler(auth))
	d.edge = &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 2 * time.Minute}
	d.serve("edge", func() error { return d.edge.Serve(d.edgeLis) })
	return nil
}

// EdgeAddr is the forward-auth endpoint's address, "" when off.
func (d *Daemon) EdgeAddr() string {
	if d.edgeLis == nil {
		return ""
	}
	return d.edgeLis.Addr().String()
}
