// Package testkit holds helpers shared by the tests of several abmesh
// packages: a settable clock, a way to run a child process in its own
// process group and a tolerant comparison of JSON encodings. It is imported only by tests.
//
// Subpackage pgtest starts a real PostgreSQL server for a test.
//
// Helpers that start abmeshd are in the daemontest subpackage, so that the
// packages abmeshd is built from can use this one in their tests without an
// import cycle.
package testkit
