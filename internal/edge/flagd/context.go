package flagd

import (
	"errors"
	"strconv"

	"google.golang.org/protobuf/types/known/structpb"

	"github.com/abmesh/abmesh/assign"
)

// TargetingKey is the evaluation context field that carries the unit.
const TargetingKey = "targetingKey"

// evalContext is a request's evaluation context in abmesh's terms.
type evalContext struct {
	unit  string
	attrs map[string]string
}

// parseContext reads the unit and the targeting attributes from an
// OpenFeature evaluation context (see the package doc for the value
// conversions). Errors are InvalidArgument statuses naming the field:
// targetingKey (missing, not a string, or refused by validUnit) or
// context["key"] (attribute limits, assign.ValidateAttributes).
func parseContext(c *structpb.Struct) (evalContext, error) {
	var ec evalContext
	var s *structpb.Value_StringValue
	switch k := c.GetFields()[TargetingKey].GetKind().(type) {
	case nil, *structpb.Value_NullValue:
		return ec, invalid(TargetingKey, "required: the unit (user, session or device id) of the abmesh test")
	case *structpb.Value_StringValue:
		s = k
	default:
		return ec, invalid(TargetingKey, "must be a string")
	}
	if err := validUnit(s.StringValue); err != nil {
		return ec, invalid(TargetingKey, "%s", err)
	}
	ec.unit = s.StringValue
	for k, v := range c.GetFields() {
		if k == TargetingKey {
			continue
		}
		if a, ok := attribute(v); ok {
			if ec.attrs == nil {
				ec.attrs = make(map[string]string, len(c.GetFields()))
			}
			ec.attrs[k] = a
		}
	}
	if err := assign.ValidateAttributes(ec.attrs); err != nil {
		var fe *assign.FieldError
		if errors.As(err, &fe) {
			return ec, invalid("context"+fe.Field[len("attributes"):], "%s", fe.Msg)
		}
		return ec, invalid("context", "%s", err)
	}
	return ec, nil
}

// attribute converts a context value to a targeting attribute: a string
// as is, a boolean as "true" or "false", a number in its shortest decimal
// form. ok is false for null, lists and structs.
func attribute(v *structpb.Value) (string, bool) {
	switch k := v.GetKind().(type) {
	case *structpb.Value_StringValue:
		return k.StringValue, true
	case *structpb.Value_BoolValue:
		return strconv.FormatBool(k.BoolValue), true
	case *structpb.Value_NumberValue:
		return strconv.FormatFloat(k.NumberValue, 'f', -1, 64), true
	}
	return "", false
}

// validUnit checks a unit id exactly as Assign does (assign.ValidateUnit:
// required, at most assign.MaxUnitLen bytes, valid UTF-8, no control or
// bidirectional formatting characters); the error is the reason alone,
// for the caller to name the field.
func validUnit(unit string) error {
	err := assign.ValidateUnit(unit)
	var fe *assign.FieldError
	if errors.As(err, &fe) {
		return errors.New(fe.Msg)
	}
	return err
}
