package pgq

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// Sentinel errors. Every error this package returns for a PgQ call is an [*Error] that
// names the queue and consumer; test it with errors.Is against these.
var (
	// ErrNotInstalled: the database has no pgq schema (or no pgq_coop for cooperative
	// consumers).
	ErrNotInstalled = errors.New("pgq is not installed")
	// ErrQueueNotFound: no queue of that name.
	ErrQueueNotFound = errors.New("queue not found")
	// ErrNotSubscribed: the consumer (or subconsumer) is not registered on the queue.
	ErrNotSubscribed = errors.New("consumer not registered on the queue")
	// ErrBatchNotFound: the batch is not active (already finished, or never existed).
	ErrBatchNotFound = errors.New("batch not found")
	// ErrEventNotFound: event_retry was asked for an event that is not in the batch.
	ErrEventNotFound = errors.New("event not found in batch")
	// ErrTickNotFound: a consumer was to be positioned at a tick the queue no longer
	// (or never) had.
	ErrTickNotFound = errors.New("tick not found")
	// ErrNoTicks: the queue has no tick yet; run the ticker (pgqd).
	ErrNoTicks = errors.New("queue has no ticks")
	// ErrQueueInUse: drop without force while consumers are registered.
	ErrQueueInUse = errors.New("consumers still registered on the queue")
	// ErrInsertDisabled: the queue refuses inserts (queue_disable_insert, as on a
	// cascaded branch) outside session_replication_role = replica.
	ErrInsertDisabled = errors.New("inserts into the queue are disabled")
	// ErrTxLimit: the transaction inserted more events than queue_per_tx_limit allows.
	ErrTxLimit = errors.New("per-transaction event limit exceeded")
	// ErrActiveBatch: a subconsumer cannot be unregistered while it holds a batch.
	ErrActiveBatch = errors.New("subconsumer holds an active batch")
	// ErrTickerDisabled: the queue is paused or ticked externally, so ticker() refuses.
	ErrTickerDisabled = errors.New("ticker disabled for the queue")
	// ErrCorrupt: PgQ reported an inconsistent state (a consumer's tick is gone, txids
	// went backwards after a restore, ...). Needs an operator.
	ErrCorrupt = errors.New("inconsistent PgQ state")
	// ErrLostPosition: an exactly-once consumer's target database records a tick that
	// is neither the start nor the end of the batch the source hands out, so applying
	// it would lose or repeat events. See [Consumer.Rewind] and [Consumer.ResetPosition].
	ErrLostPosition = errors.New("lost position")
)

// Error is a failed PgQ operation: what was done, to which queue and consumer, and
// why. It unwraps to one of the sentinel errors (when the cause is known) and to the
// underlying error, usually a *pgconn.PgError.
type Error struct {
	Op       string // what was being done, e.g. "next batch", "insert event"
	Queue    string
	Consumer string // "" for queue-level operations; "consumer.sub" for a subconsumer
	Batch    int64  // 0 when no batch is involved
	Kind     error  // the sentinel, or nil when the cause is not a known PgQ condition
	Err      error  // the cause
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("pgq: ")
	b.WriteString(e.Op)
	var who []string
	if e.Queue != "" {
		who = append(who, "queue "+strconv.Quote(e.Queue))
	}
	if e.Consumer != "" {
		who = append(who, "consumer "+strconv.Quote(e.Consumer))
	}
	if e.Batch != 0 {
		who = append(who, "batch "+strconv.FormatInt(e.Batch, 10))
	}
	if len(who) > 0 {
		b.WriteString(" (" + strings.Join(who, ", ") + ")")
	}
	if e.Kind != nil && (e.Err == nil || !strings.Contains(e.Err.Error(), e.Kind.Error())) {
		b.WriteString(": ")
		b.WriteString(e.Kind.Error())
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the sentinel and the cause, for errors.Is and errors.As.
func (e *Error) Unwrap() []error {
	var out []error
	if e.Kind != nil {
		out = append(out, e.Kind)
	}
	if e.Err != nil {
		out = append(out, e.Err)
	}
	return out
}

// who identifies the target of an operation, for errors.
type who struct {
	queue, consumer string
	batch           int64
}

// wrap turns err from an operation into an *Error with its sentinel, or returns nil.
func (w who) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	var pe *Error
	if errors.As(err, &pe) {
		return err
	}
	return &Error{Op: op, Queue: w.queue, Consumer: w.consumer, Batch: w.batch, Kind: classify(err), Err: err}
}

// fail makes an *Error for a condition this package detected itself.
func (w who) fail(op string, kind error, format string, args ...any) error {
	var cause error
	if format != "" {
		cause = fmt.Errorf(format, args...)
	}
	return &Error{Op: op, Queue: w.queue, Consumer: w.consumer, Batch: w.batch, Kind: kind, Err: cause}
}

// pgqMessages maps the texts of PgQ's exceptions to sentinels.
//
// PgQ (the original extension and ours alike) raises plain exceptions: SQLSTATE P0001
// (raise_exception) with a message, so the message is all there is to classify. The
// texts are part of PgQ's tested API (the upstream regression tests compare them) and
// ours keeps them byte for byte, so matching their fixed prefixes is stable. Only
// P0001 errors (and XX000, what elog(ERROR) in the original extension's C functions
// raises) are matched, and only here.
func pgqMessages() []pgqMessage {
	return []pgqMessage{
		{"Not subscriber to queue", ErrNotSubscribed},
		{"consumer not registered", ErrNotSubscribed},
		{"main consumer not found", ErrNotSubscribed},
		{"subconsumer not found", ErrNotSubscribed},
		{"Event queue not created yet", ErrQueueNotFound},
		{"Event queue not found", ErrQueueNotFound},
		{"No such event queue", ErrQueueNotFound},
		{"No such queue", ErrQueueNotFound},
		{"no such queue", ErrQueueNotFound},
		{"Queue not found", ErrQueueNotFound},
		{"queue not found or ticker disabled", ErrTickerDisabled},
		{"This queue has external tick source", ErrTickerDisabled},
		{"Ticker has been paused", ErrTickerDisabled},
		{"batch not found", ErrBatchNotFound},
		{"Cannot find data for batch", ErrBatchNotFound},
		{"batch_retry: batch", ErrBatchNotFound},
		{"could not construct sql for batch", ErrBatchNotFound},
		{"event not found", ErrEventNotFound},
		{"cannot reposition, tick not found", ErrTickNotFound},
		{"No ticks for this queue", ErrNoTicks},
		{"cannot drop queue, consumers still attached", ErrQueueInUse},
		{"Insert into queue disallowed", ErrInsertDisabled},
		{"Writing to queue disabled", ErrInsertDisabled},
		{"subconsumer has active batch", ErrActiveBatch},
		{"PgQ corruption", ErrCorrupt},
		{"Invalid PgQ state", ErrCorrupt},
		{"main consumer has batch open", ErrCorrupt},
	}
}

type pgqMessage struct {
	prefix string
	kind   error
}

// classify maps a PostgreSQL error to a sentinel, or nil.
func classify(err error) error {
	var pg *pgconn.PgError
	if !errors.As(err, &pg) {
		return nil
	}
	switch pg.Code {
	case "P0001", "XX000": // RAISE EXCEPTION; elog(ERROR) in the original's C code
		for _, m := range pgqMessages() {
			if strings.HasPrefix(pg.Message, m.prefix) {
				return m.kind
			}
		}
		if strings.HasPrefix(pg.Message, "Queue '") && strings.Contains(pg.Message, "events from one TX") {
			return ErrTxLimit
		}
	case "3F000": // invalid_schema_name
		return ErrNotInstalled
	case "42883", "42P01": // undefined_function, undefined_table
		if strings.Contains(pg.Message, "pgq.") || strings.Contains(pg.Message, "pgq_coop.") {
			return ErrNotInstalled
		}
	}
	return nil
}

// Retryable reports whether err is worth trying again later unchanged: connection
// failures, serialization failures, deadlocks, a server shutting down, and handler
// errors. Errors that need an operator (a missing queue or registration, a lost
// position, a missing pgq) are not.
func Retryable(err error) bool {
	for _, fatal := range []error{ErrNotInstalled, ErrQueueNotFound, ErrNotSubscribed, ErrLostPosition, ErrCorrupt, ErrTickerDisabled, errConfig} {
		if errors.Is(err, fatal) {
			return false
		}
	}
	var pg *pgconn.PgError
	if errors.As(err, &pg) && pg.Code == "42501" { // insufficient_privilege
		return false
	}
	return true
}
