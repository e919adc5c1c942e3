package otlpin

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Class says what a sender must do about an error.
type Class int

// Error classes and their OTLP statuses (the only mapping in the receiver).
const (
	// Permanent: the request is wrong; do not retry. HTTP 400 / INVALID_ARGUMENT.
	Permanent Class = iota
	// Unauthenticated: no or wrong credentials. HTTP 401 / UNAUTHENTICATED.
	Unauthenticated
	// RateLimited: slow down and retry after RetryAfter. HTTP 429 / RESOURCE_EXHAUSTED + RetryInfo.
	RateLimited
	// Unavailable: retry after RetryAfter. HTTP 503 / UNAVAILABLE + RetryInfo.
	Unavailable
	// TooLarge: the body exceeds the limit; do not retry. HTTP 413 / RESOURCE_EXHAUSTED without RetryInfo.
	TooLarge
	// UnsupportedMediaType: wrong Content-Type. HTTP 415 (HTTP only).
	UnsupportedMediaType
	// MethodNotAllowed: not a POST. HTTP 405 (HTTP only).
	MethodNotAllowed
	// Timeout: the body did not arrive within body_timeout. HTTP 408 (HTTP only).
	Timeout
)

// Error is an error with the class the sender sees.
type Error struct {
	Class      Class
	Msg        string
	RetryAfter time.Duration // RateLimited, Unavailable
	Reason     string        // metric label, e.g. "malformed", "rate_limited"
	Err        error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Msg + ": " + e.Err.Error()
	}
	return e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

// NewError builds an *Error.
func NewError(c Class, reason string, retryAfter time.Duration, err error, format string, args ...any) *Error {
	return &Error{Class: c, Reason: reason, RetryAfter: retryAfter, Err: err, Msg: fmt.Sprintf(format, args...)}
}

// classify returns err as an *Error; unknown errors are Unavailable (a bug
// or an outage is better retried than dropped).
func classify(err error, retryAfter time.Duration) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Class: Unavailable, Reason: "internal", RetryAfter: retryAfter, Msg: "cannot process request", Err: err}
}

// HTTPStatus is the HTTP status for the class.
func (c Class) HTTPStatus() int {
	switch c {
	case Permanent:
		return http.StatusBadRequest
	case Unauthenticated:
		return http.StatusUnauthorized
	case RateLimited:
		return http.StatusTooManyRequests
	case TooLarge:
		return http.StatusRequestEntityTooLarge
	case UnsupportedMediaType:
		return http.StatusUnsupportedMediaType
	case MethodNotAllowed:
		return http.StatusMethodNotAllowed
	case Timeout:
		return http.StatusRequestTimeout
	default:
		return http.StatusServiceUnavailable
	}
}

// GRPCCode is the gRPC code for the class.
func (c Class) GRPCCode() codes.Code {
	switch c {
	case Permanent, UnsupportedMediaType, MethodNotAllowed:
		return codes.InvalidArgument
	case Unauthenticated:
		return codes.Unauthenticated
	case RateLimited, TooLarge:
		return codes.ResourceExhausted
	case Timeout:
		return codes.DeadlineExceeded
	default:
		return codes.Unavailable
	}
}

func (e *Error) retryable() bool { return e.Class == RateLimited || e.Class == Unavailable }

// grpcStatus is the gRPC status, with RetryInfo when retryable.
func (e *Error) grpcStatus() *status.Status {
	// A status message must be valid UTF-8: pdata's errors can quote the
	// body, and an invalid message made the encoded error body empty.
	st := status.New(e.Class.GRPCCode(), strings.ToValidUTF8(e.Error(), "\uFFFD"))
	if e.retryable() && e.RetryAfter > 0 {
		if d, err := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(e.RetryAfter)}); err == nil {
			st = d
		}
	}
	return st
}

// retryAfterHeader is the Retry-After value in whole seconds (at least 1).
func retryAfterHeader(d time.Duration) string {
	s := int64((d + time.Second - 1) / time.Second)
	if s < 1 {
		s = 1
	}
	return strconv.FormatInt(s, 10)
}
