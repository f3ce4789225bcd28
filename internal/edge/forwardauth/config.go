package forwardauth

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// Config names where forward-auth reads a request's unit and service. The
// zero value of each field means its default (DefaultConfig).
type Config struct {
	// UnitCookie is the cookie that holds the unit, minted when absent.
	UnitCookie string
	// UnitHeader, when set, is a request header that carries a trusted
	// unit (an authenticated user id set by the proxy); it wins over the
	// cookie, and overrides apply to it.
	UnitHeader string
	// ServiceHeader is the request header naming the service whose tests
	// are assigned.
	ServiceHeader string
}

// DefaultConfig returns the configuration the zero Config stands for.
func DefaultConfig() Config {
	return Config{UnitCookie: "abmesh_unit", ServiceHeader: "x-abmesh-service"}
}

// withDefaults returns c with its zero fields from DefaultConfig and its
// header names lowercase.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.UnitCookie == "" {
		c.UnitCookie = d.UnitCookie
	}
	if c.ServiceHeader == "" {
		c.ServiceHeader = d.ServiceHeader
	}
	c.UnitHeader = strings.ToLower(c.UnitHeader)
	c.ServiceHeader = strings.ToLower(c.ServiceHeader)
	return c
}

// Validate checks the names: the cookie name an RFC 6265 token, the
// header names valid HTTP field names. Errors name abmeshd's flags.
func (c Config) Validate() error {
	var errs []error
	if c.UnitCookie != "" && !httpguts.ValidHeaderFieldName(c.UnitCookie) {
		errs = append(errs, fmt.Errorf("--edge-unit-cookie %q is not a valid cookie name", c.UnitCookie))
	}
	for _, h := range [][2]string{{"--edge-unit-header", c.UnitHeader}, {"--edge-service-header", c.ServiceHeader}} {
		if h[1] != "" && !httpguts.ValidHeaderFieldName(h[1]) {
			errs = append(errs, fmt.Errorf("%s %q is not a valid header name", h[0], h[1]))
		}
	}
	return errors.Join(errs...)
}
