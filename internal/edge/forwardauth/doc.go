// Package forwardauth assigns a proxied request's unit at the edge, for
// proxies that call an authorization service once per request: nginx
// auth_request, Traefik ForwardAuth, Envoy's HTTP ext_authz and Istio's
// CUSTOM authorization (Handler, an HTTP endpoint that answers any path
// and method), and Envoy's gRPC ext_authz (ExtAuthz,
// envoy.service.auth.v3.Authorization/Check).
//
// Per request, Auth.Decide:
//
//   - takes the unit from the trusted unit header when one is configured
//     and present (Config.UnitHeader: an authenticated user id the proxy
//     sets), else from the unit cookie (Config.UnitCookie);
//   - mints a unit (assign.MintUnit) when the request has none, and
//     answers a Set-Cookie for it (Path=/, Max-Age one year, HttpOnly,
//     SameSite=Lax, Secure when the original scheme was https);
//   - assigns every running test of the request's service through the same
//     evaluation as the Assign RPC (grpcapi.Assignment.Evaluate);
//   - answers the headers for the proxy to copy onto the upstream request
//     and route on: x-abmesh-<test>: <variant> and x-abmesh-unit: <unit>.
//
// The service comes from the configured service header
// (Config.ServiceHeader, x-abmesh-service by default) or, failing that,
// the "service" query parameter of the auth URL (HTTP) or the "service"
// context extension (gRPC); without either, every running test is
// assigned.
//
// Trust: the cookie is the client's to edit, so a unit read from it is
// taken only in the form abmesh mints (assign.Minted); another value is
// replaced by a fresh minted id. Minted ids never carry overrides
// (Registry.SetOverride refuses them, Compile ignores them), so no client
// can claim a unit that an operator pinned. Overrides apply to units that
// arrive in the trusted header, which the proxy must set itself (and strip
// from the client's request).
//
// Bad input — a unit in the header or the cookie that assign.ValidateUnit
// refuses (over assign.MaxUnitLen bytes, a control or bidirectional
// formatting character, invalid UTF-8) — is answered
// 400 with the reason (gRPC: a denied CheckResponse with HTTP status 400
// and INVALID_ARGUMENT), never a 5xx, and nothing is routed on it.
package forwardauth
