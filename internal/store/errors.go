package store

import (
	"errors"

	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"
)

// permanentCodes are the ClickHouse error codes of a write that fails the
// same way however often it is sent: the rows do not fit the table (a
// schema mismatch: a column, table or database missing, a type that does
// not convert) or the data does not parse. Everything else (network,
// timeouts, TOO_MANY_PARTS, memory limits, read-only replicas, access
// rights an operator can restore) is transient.
var permanentCodes = map[int32]string{
	6:   "CANNOT_PARSE_TEXT",
	8:   "THERE_IS_NO_COLUMN",
	10:  "NOT_FOUND_COLUMN_IN_BLOCK",
	16:  "NO_SUCH_COLUMN_IN_TABLE",
	20:  "NUMBER_OF_COLUMNS_DOESNT_MATCH",
	27:  "CANNOT_PARSE_INPUT_ASSERTION_FAILED",
	41:  "CANNOT_PARSE_DATETIME",
	43:  "ILLEGAL_TYPE_OF_ARGUMENT",
	44:  "ILLEGAL_COLUMN",
	47:  "UNKNOWN_IDENTIFIER",
	50:  "UNKNOWN_TYPE",
	53:  "TYPE_MISMATCH",
	60:  "UNKNOWN_TABLE",
	62:  "SYNTAX_ERROR",
	69:  "ARGUMENT_OUT_OF_BOUND",
	70:  "CANNOT_CONVERT_TYPE",
	72:  "CANNOT_PARSE_NUMBER",
	81:  "UNKNOWN_DATABASE",
	117: "INCORRECT_DATA",
	131: "TOO_LARGE_STRING_SIZE",
}

// permanentError marks a client-side failure that retrying cannot fix
// (rows the driver refuses to append).
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// IsPermanent reports whether a write error is deterministic: retrying
// the same rows fails the same way, so the caller must not retry it
// forever (the analyzer dead-letters such a batch, docs/analyzer.md).
func IsPermanent(err error) bool {
	var p *permanentError
	if errors.As(err, &p) {
		return true
	}
	var ex *proto.Exception
	if errors.As(err, &ex) {
		_, ok := permanentCodes[ex.Code]
		return ok
	}
	return false
}
