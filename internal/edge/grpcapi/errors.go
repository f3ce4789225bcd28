package grpcapi

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/internal/report"
)

// toStatus maps a domain error to a gRPC status. It is the only place that
// knows the mapping:
//
//	assign.ErrInvalid (a *FieldError)  → InvalidArgument, "field: message"
//	assign.ErrNotFound                 → NotFound
//	assign.ErrAlreadyExists            → AlreadyExists
//	assign.ErrFailedPrecondition       → FailedPrecondition
//	assign.ErrConflict                 → Aborted
//	report.ErrNotFound                 → NotFound
//	report.ErrNoWindow                 → FailedPrecondition
//	context errors                     → Canceled / DeadlineExceeded
//	anything else                      → Internal
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	var code codes.Code
	switch {
	case errors.Is(err, assign.ErrInvalid):
		code = codes.InvalidArgument
	case errors.Is(err, assign.ErrNotFound), errors.Is(err, report.ErrNotFound):
		code = codes.NotFound
	case errors.Is(err, assign.ErrAlreadyExists):
		code = codes.AlreadyExists
	case errors.Is(err, assign.ErrFailedPrecondition), errors.Is(err, report.ErrNoWindow):
		code = codes.FailedPrecondition
	case errors.Is(err, assign.ErrConflict):
		code = codes.Aborted
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	default:
		code = codes.Internal
	}
	return status.Error(code, err.Error())
}

// invalid returns InvalidArgument naming field.
func invalid(field, format string, args ...any) error {
	return status.Error(codes.InvalidArgument, field+": "+fmt.Sprintf(format, args...))
}

// prefixed returns err with the field path of a *FieldError renamed to
// the API's (see protoField) and prefixed by prefix (e.g. "experiment."),
// so the message names the request field. An error about the whole
// configuration (field assign.ConfigField) keeps its name.
func prefixed(prefix string, err error) error {
	var fe *assign.FieldError
	switch {
	case !errors.As(err, &fe):
		return err
	case fe.Field == assign.ConfigField:
		return fe
	}
	return &assign.FieldError{Field: prefix + protoField(fe.Field), Msg: fe.Msg}
}

// protoField maps a domain field path to the abmesh.v1 message's where
// their names differ (the manifests use the domain's short names).
func protoField(f string) string {
	switch f {
	case "plan.mde":
		return "plan.minimum_detectable_effect"
	case "plan.sd":
		return "plan.standard_deviation"
	case "metric.kind", "metric.attribute":
		return "metric.name"
	case "experiment": // of an override
		return "experiment_id"
	}
	if strings.HasPrefix(f, "plan.interactions[") && strings.HasSuffix(f, ".mde") {
		return strings.TrimSuffix(f, ".mde") + ".minimum_detectable_effect"
	}
	if strings.HasPrefix(f, "targeting[") && strings.HasSuffix(f, ".op") {
		return strings.TrimSuffix(f, ".op") + ".operator"
	}
	return f
}
