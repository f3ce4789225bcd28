package daemon

import (
	"testing"
	"time"

	"go.uber.org/goleak"
)

// Stop must end every goroutine Start began, also when Start fails: the
// servers, the loops, the Jaeger reader, the assembler and the store.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// SetGRPCGrace sets how long Stop lets RPCs and streams run on before it
// closes their connections, for the tests in package daemon_test (which
// start abmeshd with daemontest, and so cannot be in package daemon); the
// returned func restores the old value.
func SetGRPCGrace(d time.Duration) (restore func()) {
	old := grpcGrace
	grpcGrace = d
	return func() { grpcGrace = old }
}
