package daemon

import (
	"maps"

	"google.golang.org/grpc"

	"github.com/abmesh/abmesh/internal/auth"
)

// Services returns the services registered on d's API and OTLP ports.
func Services(d *Daemon) map[string]grpc.ServiceInfo {
	out := d.grpc.GetServiceInfo()
	if d.otlp != nil {
		maps.Copy(out, d.otlp.GetServiceInfo())
	}
	return out
}

// MethodRoles returns a copy of the method table.
func MethodRoles() map[string]auth.Role { return maps.Clone(methodRoles) }
