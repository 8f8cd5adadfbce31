package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/skytools-go/skytools/pkg/lifecycle"
)

func TestExitCodeFollowsTheContract(t *testing.T) {
	t.Parallel()
	cause := errors.New("checksum mismatch")
	for _, tc := range []struct {
		name string
		err  error
		want int
	}{
		{"success", nil, 0},
		{"runtime failure", errors.New("boom"), 1},
		{"usage", Usagef("bad flag"), 2},
		{"config", &lifecycle.ConfigError{File: "f.toml"}, 2},
		{"explicit code", &ExitError{Code: 128, Err: cause}, 128},
		{"explicit code wrapped", fmt.Errorf("fetch: %w", &ExitError{Code: 200, Err: cause}), 200},
		{"explicit code wins over a usage error inside", &ExitError{Code: 130, Err: Usagef("x")}, 130},
	} {
		if got := ExitCode(tc.err); got != tc.want {
			t.Errorf("%s: ExitCode(%v) = %d, want %d", tc.name, tc.err, got, tc.want)
		}
	}
	xe := &ExitError{Code: 128, Err: cause}
	if !errors.Is(xe, cause) {
		t.Errorf("ExitError does not unwrap to its cause")
	}
}

func TestMainReturnsExplicitExitCodeAndPrintsTheCause(t *testing.T) {
	t.Parallel()
	tool := Tool{
		Name: "tool",
		Commands: []*Command{{
			Name: "fetch", MaxArgs: -1,
			Run: func(context.Context, *Env, []string) error {
				return &ExitError{Code: 128, Err: errors.New("segment X: checksum mismatch")}
			},
		}},
	}
	var stdout, stderr bytes.Buffer
	if code := Main(context.Background(), tool, []string{"fetch"}, &stdout, &stderr); code != 128 {
		t.Fatalf("exit code %d, want 128", code)
	}
	if got := stderr.String(); !strings.Contains(got, "tool: segment X: checksum mismatch") {
		t.Fatalf("stderr %q does not name the cause", got)
	}
}
