// Package auth authenticates abmeshd's callers and authorizes their calls.
//
// An Identity comes from a bearer token (the token's SHA-256 is looked up in
// an auth file, compared in constant time) or from a TLS client certificate
// the listener verified against --client-ca (its subject's CN or OU is
// mapped to roles by the same file). Each gRPC method and each HTTP handler
// needs one Role; a caller without an identity gets Unauthenticated (HTTP
// 401), a caller whose identity lacks the role PermissionDenied (HTTP 403).
//
// The auth file has one rule a line; '#' starts a comment:
//
//	token NAME ROLES sha256:HEX   # a bearer token, by its SHA-256
//	cert  CN=VALUE ROLES          # a client certificate whose subject CN is VALUE
//	cert  OU=VALUE ROLES          # ... or one of whose OUs is VALUE
//
// ROLES is a comma-separated list of admin, reader, client and ingest.
// admin includes reader. Authenticator.Reload rereads the file; abmeshd
// calls it on SIGHUP.
package auth
