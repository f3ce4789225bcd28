package forwardauth

import (
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
)

// HealthPath answers a proxy's health check without assigning.
const HealthPath = "/healthz"

// Handler is the forward-auth HTTP endpoint. It answers every path but
// HealthPath and every method alike (proxies differ in what they send:
// nginx auth_request and Traefik call the configured URL, Envoy's HTTP
// ext_authz calls its path prefix plus the original path), so abmeshd
// serves it on an address of its own (--edge-listen):
//
//	200, x-abmesh-<test>: <variant>… x-abmesh-unit: <unit>
//	     [Set-Cookie: <cookie>=<minted unit>; …]   assigned
//	400, text/plain reason                          bad input (BadInput)
//	200, "ok"                                       GET or HEAD /healthz, for a
//	                                                proxy's health check: nothing
//	                                                is assigned or minted
//
// It reads the unit header and the Cookie headers the proxy forwards, the
// service from the service header or the auth URL's "service" query
// parameter, and the original scheme from X-Forwarded-Proto (or the
// connection's TLS).
type Handler struct {
	auth *Auth
	// canonical header keys of the configured names
	unitKey, serviceKey string
}

// NewHandler returns the endpoint over auth.
func NewHandler(auth *Auth) *Handler {
	h := &Handler{auth: auth, serviceKey: textproto.CanonicalMIMEHeaderKey(auth.cfg.ServiceHeader)}
	if auth.cfg.UnitHeader != "" {
		h.unitKey = textproto.CanonicalMIMEHeaderKey(auth.cfg.UnitHeader)
	}
	return h
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == HealthPath && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
		return
	}
	req := Request{Cookies: r.Header["Cookie"], Service: h.service(r), HTTPS: isHTTPS(r)}
	if h.unitKey != "" {
		req.UnitHeader = first(r.Header[h.unitKey])
	}
	out := w.Header()
	res, err := h.auth.Decide(&req, out.Set)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if res.SetCookie != "" {
		out["Set-Cookie"] = []string{res.SetCookie}
	}
	out["Content-Length"] = []string{"0"}
	w.WriteHeader(http.StatusOK)
}

// service is the service header, else the request URL's "service" query
// parameter.
func (h *Handler) service(r *http.Request) string {
	if s := first(r.Header[h.serviceKey]); s != "" {
		return s
	}
	return queryParam(r.URL.RawQuery, "service")
}

// queryParam returns the first value of key in a raw query, unescaped
// ("" when absent or badly escaped), without parsing the whole query.
func queryParam(raw, key string) string {
	for raw != "" {
		var kv string
		kv, raw, _ = strings.Cut(raw, "&")
		k, v, _ := strings.Cut(kv, "=")
		if k != key {
			continue
		}
		if strings.ContainsAny(v, "%+") {
			v, _ = url.QueryUnescape(v)
		}
		return v
	}
	return ""
}

// isHTTPS is whether the original request came over https: the first
// X-Forwarded-Proto a proxy set, else this connection's TLS.
func isHTTPS(r *http.Request) bool {
	if p := first(r.Header["X-Forwarded-Proto"]); p != "" {
		p, _, _ = strings.Cut(p, ",")
		return strings.EqualFold(strings.TrimSpace(p), "https")
	}
	return r.TLS != nil
}

func first(vs []string) string {
	if len(vs) == 0 {
		return ""
	}
	return vs[0]
}
