package forwardauth

import (
	"errors"
	"fmt"
	"strings"

	"github.com/abmesh/abmesh/assign"
)

// UnitHeader is the response header that carries the request's unit to
// the upstream (the name the SDK reads, client.UnitHeader).
const UnitHeader = "x-abmesh-unit"

// cookieMaxAge is the minted cookie's lifetime: a year, in seconds.
const cookieMaxAge = 365 * 24 * 60 * 60

// Evaluator assigns a unit: grpcapi.Assignment.Evaluate, the evaluation
// behind the Assign RPC. as is valid only during use.
type Evaluator interface {
	Evaluate(unit string, attrs map[string]string, f assign.Filter, use func(eng *assign.Engine, as []assign.Assignment)) error
}

// Auth decides forward-auth requests; Handler and ExtAuthz carry it over
// HTTP and gRPC. It is safe for concurrent use.
type Auth struct {
	cfg  Config
	eval Evaluator
}

// New returns an Auth reading requests as cfg says (zero fields default)
// and assigning through eval. cfg must be valid (Config.Validate).
func New(cfg Config, eval Evaluator) *Auth {
	return &Auth{cfg: cfg.withDefaults(), eval: eval}
}

// Request is what forward-auth reads of one proxied request, whichever
// proxy and protocol brought it.
type Request struct {
	// UnitHeader is the value of Config.UnitHeader; "" when it is not
	// configured or absent.
	UnitHeader string
	// Cookies are the values of the request's Cookie headers.
	Cookies []string
	// Service is the service whose tests are assigned; "" assigns every
	// running test.
	Service string
	// HTTPS is whether the original request came over https (the minted
	// cookie is then Secure).
	HTTPS bool
}

// Result is the answer to a Request besides the routing headers.
type Result struct {
	// Unit is the unit the request was assigned as.
	Unit string
	// Minted is whether Unit was minted for this request.
	Minted bool
	// SetCookie is the Set-Cookie value the client gets: the minted unit's
	// cookie; "" when nothing was minted.
	SetCookie string
}

// BadInput is a request forward-auth refuses: 400 with Reason, never a
// 5xx, nothing routed.
type BadInput struct{ Reason string }

func (e *BadInput) Error() string { return e.Reason }

// Decide resolves req's unit (minting one when the request has none),
// assigns it in every running test of req.Service, and calls emit with
// each header for the upstream request: x-abmesh-<test>: <variant> per
// assigned test, then x-abmesh-unit: <unit>. The error is a *BadInput;
// emit is not called then.
func (a *Auth) Decide(req *Request, emit func(name, value string)) (Result, error) {
	res, err := a.unit(req)
	if err != nil {
		return Result{}, err
	}
	err = a.eval.Evaluate(res.Unit, nil, assign.Filter{Service: req.Service}, func(_ *assign.Engine, as []assign.Assignment) {
		for _, x := range as {
			if name := assign.HeaderName(x.Test); name != UnitHeader { // a test named "unit" would shadow the unit
				emit(name, x.Variant)
			}
		}
	})
	if err != nil {
		return Result{}, &BadInput{Reason: err.Error()}
	}
	emit(UnitHeader, res.Unit)
	if res.Minted {
		res.SetCookie = a.cookie(res.Unit, req.HTTPS)
	}
	return res, nil
}

// unit resolves the request's unit: the trusted header, else a minted-form
// cookie, else a fresh minted id.
func (a *Auth) unit(req *Request) (Result, error) {
	if req.UnitHeader != "" {
		if err := checkUnit("header "+a.cfg.UnitHeader, req.UnitHeader); err != nil {
			return Result{}, err
		}
		return Result{Unit: req.UnitHeader}, nil
	}
	if v := cookieValue(req.Cookies, a.cfg.UnitCookie); v != "" {
		if err := checkUnit("cookie "+a.cfg.UnitCookie, v); err != nil {
			return Result{}, err
		}
		if assign.Minted(v) {
			return Result{Unit: v}, nil
		}
		// Not an id abmesh minted: the client's own claim, which the edge
		// never takes (see the package doc). A fresh id replaces it.
	}
	return Result{Unit: assign.MintUnit(), Minted: true}, nil
}

// checkUnit refuses a unit that assign.ValidateUnit refuses (over
// assign.MaxUnitLen bytes, a control or bidirectional formatting
// character, not UTF-8), naming where it came from.
func checkUnit(where, unit string) error {
	err := assign.ValidateUnit(unit)
	if err == nil {
		return nil
	}
	msg := err.Error()
	if fe := (*assign.FieldError)(nil); errors.As(err, &fe) {
		msg = fe.Msg
	}
	return &BadInput{Reason: "unit in " + where + ": " + msg}
}

// cookieValue returns the value of the first cookie called name in the
// Cookie header values hs (RFC 6265 "name=value; name=value"; a quoted
// value is unquoted), or "". Unlike net/http's parser it keeps a value
// with invalid bytes, for checkUnit to refuse with a reason.
func cookieValue(hs []string, name string) string {
	for _, h := range hs {
		for h != "" {
			var part string
			part, h, _ = strings.Cut(h, ";")
			k, v, ok := strings.Cut(strings.TrimLeft(part, " \t"), "=")
			if !ok || k != name {
				continue
			}
			v = strings.TrimRight(v, " \t")
			if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			return v
		}
	}
	return ""
}

// cookie returns the Set-Cookie value for a minted unit.
func (a *Auth) cookie(unit string, https bool) string {
	c := fmt.Sprintf("%s=%s; Path=/; Max-Age=%d; HttpOnly; SameSite=Lax", a.cfg.UnitCookie, unit, cookieMaxAge)
	if https {
		c += "; Secure"
	}
	return c
}
