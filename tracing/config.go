package tracing

import (
	"errors"
	"fmt"
	"time"
)

// Config sets an Assembler's timing and memory limits. The zero value of
// each field means its default (see DefaultConfig).
type Config struct {
	// IdleTimeout completes a trace when no span of it arrived for this
	// long. Default 5s.
	IdleTimeout time.Duration
	// MaxTraceAge completes a trace this long after its first span arrived,
	// even if spans keep coming. Default 60s; must be ≥ IdleTimeout.
	MaxTraceAge time.Duration
	// TickInterval is how often the completion goroutine looks for idle
	// traces. Default IdleTimeout/5, at most 1s. Negative: no goroutine;
	// the caller drives completion with Expire and Flush (tests, offline
	// files).
	TickInterval time.Duration

	// MaxTraces bounds the traces in flight. Default 100,000.
	MaxTraces int
	// MaxSpans bounds the spans in flight, over all traces. Default 500,000.
	MaxSpans int
	// MaxBytes bounds the memory of the traces in flight, as the
	// Assembler charges it: about 40 bytes a span, 16 a flag event or
	// kept metric, 16 a distinct string of a trace, the bytes of its unit
	// ids and 320 a trace (see BytesInFlight). Default 256 MiB.
	MaxBytes int
	// KeepMetric, when set, says which numeric attributes a trace in
	// flight keeps (by key): those a viewpoint's metric can read. Nil
	// keeps them all. It must be safe for concurrent use.
	KeepMetric func(key string) bool
	// MaxSpansPerTrace bounds one trace; spans beyond it are rejected
	// (ReasonTraceTooLarge). Default 10,000.
	MaxSpansPerTrace int
	// RecentTraces is how many completed trace ids are remembered to count
	// their late spans. Default 2 × MaxTraces.
	RecentTraces int

	// MaxValueLen truncates string attribute values, span names and service
	// names longer than this many bytes (counted). Default 256.
	MaxValueLen int
	// MaxAttrsPerSpan drops attributes beyond this many on a span or event
	// (counted). Default 128.
	MaxAttrsPerSpan int
	// MaxEventsPerSpan drops events beyond this many on a span (counted).
	// Default 64.
	MaxEventsPerSpan int

	// MaxClockSkew rejects spans starting later than now + MaxClockSkew
	// (ReasonFutureStart). Default 1h.
	MaxClockSkew time.Duration
	// MaxSpanDuration rejects spans lasting longer (ReasonTooLong).
	// Default 24h.
	MaxSpanDuration time.Duration

	// Now is the clock; default time.Now. Tests inject a fake one.
	Now func() time.Time
}

// DefaultConfig returns the configuration the zero Config stands for.
func DefaultConfig() Config {
	var c Config
	c.setDefaults()
	return c
}

func (c *Config) setDefaults() {
	if c.IdleTimeout == 0 {
		c.IdleTimeout = 5 * time.Second
	}
	if c.MaxTraceAge == 0 {
		c.MaxTraceAge = max(60*time.Second, c.IdleTimeout)
	}
	if c.TickInterval == 0 {
		c.TickInterval = min(c.IdleTimeout/5, time.Second)
		if c.TickInterval <= 0 {
			c.TickInterval = time.Millisecond
		}
	}
	if c.MaxTraces == 0 {
		c.MaxTraces = 100_000
	}
	if c.MaxSpans == 0 {
		c.MaxSpans = 500_000
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = 256 << 20
	}
	if c.MaxSpansPerTrace == 0 {
		c.MaxSpansPerTrace = 10_000
	}
	if c.RecentTraces == 0 {
		c.RecentTraces = 2 * c.MaxTraces
	}
	if c.MaxValueLen == 0 {
		c.MaxValueLen = 256
	}
	if c.MaxAttrsPerSpan == 0 {
		c.MaxAttrsPerSpan = 128
	}
	if c.MaxEventsPerSpan == 0 {
		c.MaxEventsPerSpan = 64
	}
	if c.MaxClockSkew == 0 {
		c.MaxClockSkew = time.Hour
	}
	if c.MaxSpanDuration == 0 {
		c.MaxSpanDuration = 24 * time.Hour
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate reports the first field that is out of range, after defaults
// are applied. A nil error means NewAssembler accepts c.
func (c Config) Validate() error {
	c.setDefaults()
	var errs []error
	pos := func(name string, v time.Duration) {
		if v < 0 {
			errs = append(errs, fmt.Errorf("%s is %v, want > 0", name, v))
		}
	}
	pos("IdleTimeout", c.IdleTimeout)
	pos("MaxTraceAge", c.MaxTraceAge)
	pos("MaxClockSkew", c.MaxClockSkew)
	pos("MaxSpanDuration", c.MaxSpanDuration)
	if c.MaxTraceAge < c.IdleTimeout {
		errs = append(errs, fmt.Errorf("MaxTraceAge %v is below IdleTimeout %v", c.MaxTraceAge, c.IdleTimeout))
	}
	for _, f := range []struct {
		name string
		v    int
	}{
		{"MaxTraces", c.MaxTraces}, {"MaxSpans", c.MaxSpans}, {"MaxBytes", c.MaxBytes}, {"MaxSpansPerTrace", c.MaxSpansPerTrace},
		{"RecentTraces", c.RecentTraces}, {"MaxValueLen", c.MaxValueLen},
		{"MaxAttrsPerSpan", c.MaxAttrsPerSpan}, {"MaxEventsPerSpan", c.MaxEventsPerSpan},
	} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("%s is %d, want > 0", f.name, f.v))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("tracing config: %w", errors.Join(errs...))
	}
	return nil
}
