package auth

import (
	"fmt"
	"strings"
)

// Role is what a call needs. Each gRPC method and HTTP handler needs one.
type Role uint8

// Roles. Public needs no identity at all (health checks).
const (
	Public Role = iota
	// Admin changes experiments, layers and overrides and their lifecycle.
	// It includes Reader.
	Admin
	// Reader reads experiments, subsets, cells, reports, status, the audit
	// log, the web pages and /metrics.
	Reader
	// Client assigns units: Assign, Watch, the flagd evaluation API and
	// forward-auth (Envoy ext_authz and the HTTP endpoint).
	Client
	// Ingest sends spans to the OTLP receiver.
	Ingest
	numRoles
)

var roleNames = [numRoles]string{Public: "public", Admin: "admin", Reader: "reader", Client: "client", Ingest: "ingest"}

// String is the role's name as the auth file spells it.
func (r Role) String() string {
	if r < numRoles {
		return roleNames[r]
	}
	return fmt.Sprintf("Role(%d)", uint8(r))
}

// Roles is a set of roles.
type Roles uint8

// RolesOf returns the set of rs.
func RolesOf(rs ...Role) Roles {
	var s Roles
	for _, r := range rs {
		s |= 1 << r
	}
	return s
}

// Has says whether s grants r: Public always, Reader also through Admin.
func (s Roles) Has(r Role) bool {
	if r == Public || s&(1<<r) != 0 {
		return true
	}
	return r == Reader && s&(1<<Admin) != 0
}

// String lists the roles, comma-separated, as the auth file spells them.
func (s Roles) String() string {
	var names []string
	for r := Admin; r < numRoles; r++ {
		if s&(1<<r) != 0 {
			names = append(names, r.String())
		}
	}
	return strings.Join(names, ",")
}

// ParseRoles reads a comma-separated list of role names (public excluded:
// it is no identity's role).
func ParseRoles(s string) (Roles, error) {
	var set Roles
	for name := range strings.SplitSeq(s, ",") {
		r := Admin
		for r < numRoles && roleNames[r] != name {
			r++
		}
		if r == numRoles {
			return 0, fmt.Errorf("unknown role %q (want admin, reader, client or ingest)", name)
		}
		set |= RolesOf(r)
	}
	return set, nil
}
