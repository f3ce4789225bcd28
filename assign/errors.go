package assign

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error the package returns wraps at most one of
// them; callers test with errors.Is. The server maps them to gRPC codes:
//
//	ErrInvalid            → InvalidArgument
//	ErrNotFound           → NotFound
//	ErrAlreadyExists      → AlreadyExists
//	ErrFailedPrecondition → FailedPrecondition
//	ErrConflict           → Aborted
//
// Any other error (for example from a Store) is internal.
var (
	// ErrInvalid reports invalid input. It is always wrapped in a
	// *FieldError naming the offending field.
	ErrInvalid = errors.New("invalid argument")
	// ErrNotFound reports an unknown experiment, layer or override.
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists reports a create of an id that exists.
	ErrAlreadyExists = errors.New("already exists")
	// ErrFailedPrecondition reports an operation the current state does not
	// allow, e.g. starting a concluded experiment.
	ErrFailedPrecondition = errors.New("failed precondition")
	// ErrConflict reports a write to a SharedStore that lost a race: an
	// entity it touches was changed by another registry (replica) since
	// this one loaded it. The message names the entity and its expected
	// and actual resource versions; retrying after the registry has
	// reloaded (Reload) re-evaluates the write against the current state.
	ErrConflict = errors.New("conflict")
)

// FieldError is an invalid field. Field is the field's path with the domain
// names in snake_case, e.g. "variants[1].weight", "unit_id",
// `attributes["grade"]`, `experiments["checkout-v2"].slice`. A FieldError
// wraps ErrInvalid:
//
//	var fe *FieldError
//	if errors.As(err, &fe) { ... fe.Field ... }
//	errors.Is(err, ErrInvalid) // true
type FieldError struct {
	Field string
	Msg   string
}

// Error returns "field: message".
func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// Unwrap returns ErrInvalid.
func (e *FieldError) Unwrap() error { return ErrInvalid }

// fieldErr returns a *FieldError with a formatted message.
func fieldErr(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// prefixField prefixes the field path of a *FieldError in err with prefix
// ("experiments[\"x\"]" + "." + field); other errors pass through.
func prefixField(prefix string, err error) error {
	var fe *FieldError
	if err == nil || !errors.As(err, &fe) {
		return err
	}
	sep := "."
	if fe.Field == "" || fe.Field[0] == '[' {
		sep = ""
	}
	return &FieldError{Field: prefix + sep + fe.Field, Msg: fe.Msg}
}

// notFound returns an error wrapping ErrNotFound for kind (e.g.
// "experiment") and id.
func notFound(kind, id string) error {
	return fmt.Errorf("%s %q: %w", kind, id, ErrNotFound)
}

// precondition returns an error wrapping ErrFailedPrecondition.
func precondition(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrFailedPrecondition, fmt.Sprintf(format, args...))
}
