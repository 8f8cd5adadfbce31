package pgq

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

func TestClassifyPgQExceptions(t *testing.T) {
	cases := []struct {
		code, msg string
		want      error
	}{
		{"P0001", "Not subscriber to queue: q/c", ErrNotSubscribed},
		{"P0001", "Event queue not created yet", ErrQueueNotFound},
		{"XX000", "No such queue", ErrQueueNotFound}, // the original's C insert
		{"P0001", "queue not found or ticker disabled: q", ErrTickerDisabled},
		{"P0001", "batch not found", ErrBatchNotFound},
		{"P0001", "batch_retry: batch 7 not found", ErrBatchNotFound},
		{"P0001", "cannot reposition, tick not found: 99", ErrTickNotFound},
		{"P0001", "Queue 'q' allows max 2 events from one TX", ErrTxLimit},
		{"P0001", "cannot drop queue, consumers still attached", ErrQueueInUse},
		{"3F000", `schema "pgq" does not exist`, ErrNotInstalled},
		{"42883", "function pgq.next_batch_custom(unknown, unknown) does not exist", ErrNotInstalled},
		{"42883", "function public.f() does not exist", nil},
		{"P0001", "something else entirely", nil},
		{"23505", "batch not found", nil}, // only PgQ's own exceptions are read
	}
	for _, c := range cases {
		err := fmt.Errorf("wrapped: %w", &pgconn.PgError{Code: c.code, Message: c.msg})
		if got := classify(err); got != c.want {
			t.Errorf("%s %q: got %v, want %v", c.code, c.msg, got, c.want)
		}
	}
	if classify(errors.New("not a PostgreSQL error")) != nil {
		t.Error("a non-PostgreSQL error was classified")
	}
}

func TestErrorNamesQueueConsumerAndBatchAndUnwraps(t *testing.T) {
	cause := &pgconn.PgError{Code: "P0001", Message: "batch not found"}
	err := who{queue: "orders", consumer: "mailer", batch: 42}.wrap("finish batch", cause)
	msg := err.Error()
	for _, want := range []string{`queue "orders"`, `consumer "mailer"`, "batch 42", "finish batch", "batch not found"} {
		if !strings.Contains(msg, want) {
			t.Errorf("%q lacks %q", msg, want)
		}
	}
	var pe *pgconn.PgError
	if !errors.Is(err, ErrBatchNotFound) || !errors.As(err, &pe) {
		t.Errorf("%v does not unwrap to the sentinel and the PostgreSQL error", err)
	}
	if Retryable(err) != true || Retryable(who{}.fail("x", ErrNotSubscribed, "")) {
		t.Error("Retryable misjudges")
	}
}
