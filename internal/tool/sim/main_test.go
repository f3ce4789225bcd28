package sim

import (
	"testing"

	"go.uber.org/goleak"
)

// Evaluate starts worker goroutines: none may outlive it.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
