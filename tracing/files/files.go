package files

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/abmesh/abmesh/tracing"
	"github.com/abmesh/abmesh/tracing/jaeger"
	"github.com/abmesh/abmesh/tracing/otlp"
)

// Format is a trace file format.
type Format int

// Formats Decode recognizes.
const (
	FormatUnknown  Format = iota
	FormatJaegerUI        // {"data":[{"traceID", "spans", "processes"}]}
	FormatOTLPJSON        // {"resourceSpans":[...]}, possibly one per line
)

// String returns "jaeger-ui", "otlp-json" or "unknown".
func (f Format) String() string {
	switch f {
	case FormatJaegerUI:
		return "jaeger-ui"
	case FormatOTLPJSON:
		return "otlp-json"
	}
	return "unknown"
}

// Error is a problem at a position in a trace file.
type Error struct {
	File   string
	Offset int64 // byte offset of the problem: the offending byte, or the last byte of the offending value
	Line   int   // 1-based
	Column int   // 1-based, in bytes
	Err    error
}

// Error formats as "file:line:col: message".
func (e *Error) Error() string {
	return fmt.Sprintf("%s:%d:%d: %v", e.File, e.Line, e.Column, e.Err)
}

// Unwrap returns the underlying error (often a *json.SyntaxError or
// *json.UnmarshalTypeError).
func (e *Error) Unwrap() error { return e.Err }

// ErrUnknownFormat is wrapped by errors for JSON that is neither a Jaeger
// UI export nor OTLP JSON.
var ErrUnknownFormat = errors.New(`unknown trace format: want a Jaeger UI export ({"data":[...]}) or OTLP JSON ({"resourceSpans":[...]})`)

// ReadFile reads the trace file at path into b (see Decode).
func ReadFile(path string, b *tracing.Batch) (Format, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return FormatUnknown, err
	}
	return Decode(path, data, b)
}

// Decode reads a trace file's content — one or more JSON documents, each
// a Jaeger UI export or an OTLP JSON document — appending its spans to b
// and counting the spans that could not be converted in b.Malformed. It
// returns the format of the first document. Errors are *Error values
// naming name and the position in data, for JSON that is malformed, of
// the wrong shape, of an unknown format, or absent; spans read before an
// error stay in b.
func Decode(name string, data []byte, b *tracing.Batch) (Format, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	first := FormatUnknown
	docs := 0
	for {
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if err == io.EOF {
			break
		}
		if err != nil {
			return first, position(name, data, 0, err, dec.InputOffset())
		}
		base := dec.InputOffset() - int64(len(raw))
		docs++
		f, err := decodeDoc(raw, b)
		if err != nil {
			return first, position(name, data, base, err, base)
		}
		if first == FormatUnknown {
			first = f
		}
	}
	if docs == 0 {
		return first, &Error{File: name, Line: 1, Column: 1, Err: errors.New("no JSON document")}
	}
	return first, nil
}

func decodeDoc(raw json.RawMessage, b *tracing.Batch) (Format, error) {
	var probe struct {
		Data          json.RawMessage `json:"data"`
		ResourceSpans json.RawMessage `json:"resourceSpans"`
	}
	if err := json.Unmarshal(raw, &probe); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field == "" {
			return FormatUnknown, ErrUnknownFormat // not an object
		}
		return FormatUnknown, err
	}
	switch {
	case probe.ResourceSpans != nil:
		return FormatOTLPJSON, otlp.DecodeJSON(raw, b)
	case probe.Data != nil:
		return FormatJaegerUI, jaeger.DecodeUIJSON(raw, b)
	}
	return FormatUnknown, ErrUnknownFormat
}

// position wraps err as an *Error at the offset json reports (relative to
// base), or at fallback when it reports none.
func position(name string, data []byte, base int64, err error, fallback int64) *Error {
	off := fallback
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		off = base + se.Offset - 1 // json counts the offending byte as read
	case errors.As(err, &te):
		off = base + te.Offset - 1 // the last byte of the offending value
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		off = int64(len(data))
	}
	off = min(max(off, 0), int64(len(data)))
	line, col := 1, 1
	for _, c := range data[:off] {
		if c == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	return &Error{File: name, Offset: off, Line: line, Column: col, Err: err}
}
