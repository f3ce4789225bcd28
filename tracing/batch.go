package tracing

import (
	"fmt"
	"strings"
)

// Reason says why a span was rejected as malformed.
type Reason uint8

// Reasons a span is rejected. Converters use the id reasons for ids they
// cannot represent (wrong length, bad encoding); the Assembler checks the
// rest.
const (
	ReasonInvalidTraceID  Reason = iota // missing, all zero, wrong length or not hex
	ReasonInvalidSpanID                 // missing, all zero, wrong length or not hex
	ReasonInvalidParentID               // wrong length or not hex (a missing parent is a root)
	ReasonMissingService                // no service.name / process serviceName
	ReasonMissingStart                  // start time zero or before 1970
	ReasonEndBeforeStart                // end time before start time
	ReasonFutureStart                   // start time beyond now + Config.MaxClockSkew
	ReasonTooLong                       // duration above Config.MaxSpanDuration
	ReasonDuplicateSpanID               // a span with this id is already in the trace
	ReasonTraceTooLarge                 // the trace already holds Config.MaxSpansPerTrace spans
	ReasonMalformed                     // a converter could not read the span for another cause
	NumReasons                          // number of reasons; not a reason
)

var reasonNames = [NumReasons]string{
	"invalid_trace_id", "invalid_span_id", "invalid_parent_id", "missing_service",
	"missing_start", "end_before_start", "future_start", "too_long",
	"duplicate_span_id", "trace_too_large", "malformed",
}

// String returns the snake_case reason name used in counters and messages.
func (r Reason) String() string {
	if r < NumReasons {
		return reasonNames[r]
	}
	return fmt.Sprintf("reason(%d)", uint8(r))
}

// RejectCounts counts rejected spans by Reason.
type RejectCounts [NumReasons]int

// Total returns the number of rejected spans over all reasons.
func (c *RejectCounts) Total() int {
	n := 0
	for _, v := range c {
		n += v
	}
	return n
}

// String lists the non-zero counts as "reason=n, reason=n"; "" when none.
func (c *RejectCounts) String() string {
	var b strings.Builder
	for r, v := range c {
		if v == 0 {
			continue
		}
		if b.Len() > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s=%d", Reason(r), v)
	}
	return b.String()
}

// Batch is a set of spans converted from one request or file, plus the
// count of spans the converter could not convert. Converters fill either
// Spans (the full span model) or Summaries with Flags and Metrics (only
// what the Assembler keeps; see SpanSummary), or both. A Batch may be
// reused after Assembler.Add returns (call Reset).
type Batch struct {
	Spans []Span
	// Summaries are spans decoded straight into what the Assembler keeps;
	// their flag events and numeric attributes are in Flags and Metrics.
	Summaries []SpanSummary
	Flags     []FlagSummary
	Metrics   []MetricSummary
	// Limits are the SpanLimits a decoder filling Summaries applies (zero
	// fields: the defaults); what they cut is counted in Trimmed.
	Limits  SpanLimits
	Trimmed Trimmed

	Malformed RejectCounts // spans the converter rejected, by reason
	// Detail describes the first span the converter rejected ("" when none),
	// e.g. `resource 0 span 3: span_id has 4 bytes, want 8`.
	Detail string
	// Seq is the write-ahead log record the batch was decoded from, 0
	// when none: the Assembler tracks which records its traces hold (see
	// Assembler.Checkpoint).
	Seq uint64
}

// Reject counts one span the converter rejected for reason; detail (which
// span, what was wrong) is kept when it is the first.
func (b *Batch) Reject(r Reason, detail string) {
	b.Malformed[r]++
	if b.Detail == "" {
		b.Detail = detail
	}
}

// Reset empties the batch, keeping its slices' capacity and its Limits.
func (b *Batch) Reset() {
	clear(b.Spans)
	b.Spans = b.Spans[:0]
	clear(b.Summaries)
	b.Summaries = b.Summaries[:0]
	clear(b.Flags)
	b.Flags = b.Flags[:0]
	clear(b.Metrics)
	b.Metrics = b.Metrics[:0]
	b.Trimmed = Trimmed{}
	b.Malformed = RejectCounts{}
	b.Detail = ""
	b.Seq = 0
}

// Len returns the number of spans the batch stands for, converted or not.
func (b *Batch) Len() int { return len(b.Spans) + len(b.Summaries) + b.Malformed.Total() }

// AddResult tells what Assembler.Add did with a batch.
type AddResult struct {
	Accepted int          // spans added to traces in flight
	Late     int          // spans of traces already completed, dropped
	Rejected RejectCounts // malformed spans, the converter's included
	Detail   string       // the first rejection's description, "" when none
}

// RejectedSpans returns the number of spans not accepted (malformed + late):
// what an OTLP receiver reports as partial_success.rejected_spans.
func (r *AddResult) RejectedSpans() int { return r.Rejected.Total() + r.Late }

// Message describes the rejected spans for people ("" when none), e.g.
// "2 spans rejected: invalid_span_id=1, missing_service=1 (first: ...)".
func (r *AddResult) Message() string {
	n := r.RejectedSpans()
	if n == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d spans rejected:", n)
	sep := " "
	if s := r.Rejected.String(); s != "" {
		b.WriteString(sep + s)
		sep = ", "
	}
	if r.Late > 0 {
		fmt.Fprintf(&b, "%slate=%d (trace already completed)", sep, r.Late)
	}
	if r.Detail != "" {
		fmt.Fprintf(&b, " (first: %s)", r.Detail)
	}
	return b.String()
}
