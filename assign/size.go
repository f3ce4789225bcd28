package assign

import "math/bits"

// Bytes of the protobuf encoding, bounded from above: a field's tag takes
// at most 2 bytes (abmesh.v1 field numbers are below 2048), a varint at
// most 10, a Timestamp message at most 22 (seconds and nanos); enum
// values are below 128.
const (
	tagBytes       = 2
	varintField    = tagBytes + 10
	enumField      = tagBytes + 1 // enums and bools of abmesh.v1 are below 128
	doubleField    = tagBytes + 8
	timestampField = tagBytes + 1 + 22
)

// EncodedSize returns an upper bound of the size of c's protobuf encoding
// as the Watch stream carries it (an abmesh.v1 ConfigSnapshot), within a
// few bytes per field of the exact size. Config.Validate refuses a
// configuration above MaxConfigBytes. It takes time linear in c's size.
func (c *Config) EncodedSize() int {
	n := varintField // version
	for i := range c.Experiments {
		n += messageSize(c.Experiments[i].encodedSize())
	}
	for i := range c.Layers {
		l := &c.Layers[i]
		n += messageSize(stringSize(l.ID) + stringSize(l.Description) + timeSize(l.CreatedAt.IsZero()))
	}
	for _, o := range c.Overrides {
		n += messageSize(stringSize(o.Experiment) + stringSize(o.Unit) + stringSize(o.Variant))
	}
	return n
}

// encodedSize bounds the size of e's abmesh.v1 Experiment message body.
func (e *Experiment) encodedSize() int {
	n := stringSize(e.ID) + stringSize(e.Owner) + stringSize(e.Description) +
		stringSize(e.ChangeService) + stringSize(e.MeasureService) + stringSize(e.Layer) +
		stringSize(e.Salt) + stringSize(e.Winner)
	n += messageSize(stringSize(e.Metric.String()) + 2*enumField) // name, direction, aggregate
	for _, v := range e.Variants {
		n += messageSize(stringSize(v.Name) + intSize(uint64(v.Weight)))
	}
	if e.Layer != "" {
		n += messageSize(intSize(uint64(e.Slice.Start)) + intSize(uint64(e.Slice.End)))
	}
	for i := range e.Targeting {
		r := &e.Targeting[i]
		body := stringSize(r.Attribute) + enumField
		for _, v := range r.Values {
			body += stringSize(v)
		}
		n += messageSize(body)
	}
	for _, in := range [][]Interference{e.Emits, e.Susceptible} {
		for _, x := range in {
			n += messageSize(stringSize(x.Kind) + stringSize(x.Scope))
		}
	}
	plan := 4 * doubleField
	for _, x := range e.Plan.Interactions {
		plan += messageSize(stringSize(x.With) + doubleField)
	}
	n += messageSize(plan)
	n += 2*enumField + intSize(uint64(max(e.Phase, 0))) // sticky, status, phase
	n += timeSize(e.CreatedAt.IsZero()) + timeSize(e.UpdatedAt.IsZero())
	for _, p := range e.Phases {
		weights := 0
		for _, w := range p.Weights {
			weights += varintLen(uint64(w))
		}
		n += messageSize(varintField + messageSize(weights) + timeSize(p.StartedAt.IsZero()))
	}
	return n
}

// intSize bounds a non-negative integer field's encoding.
func intSize(v uint64) int { return tagBytes + varintLen(v) }

// stringSize bounds a string field's encoding (none when empty).
func stringSize(s string) int {
	if s == "" {
		return 0
	}
	return messageSize(len(s))
}

// messageSize bounds a length-delimited field of n bytes: tag, length, body.
func messageSize(n int) int { return tagBytes + varintLen(uint64(n)) + n }

// timeSize bounds a Timestamp field (none when the time is zero).
func timeSize(zero bool) int {
	if zero {
		return 0
	}
	return timestampField
}

// varintLen is the length of v's varint encoding.
func varintLen(v uint64) int { return (bits.Len64(v|1) + 6) / 7 }
