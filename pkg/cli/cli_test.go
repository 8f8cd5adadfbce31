package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"testing"

	"github.com/skytools-go/skytools/pkg/lifecycle"
)

type recorded struct {
	cmd  string
	args []string
	env  *Env
	json bool
}

func testTool(rec *recorded) Tool {
	var asJSON bool
	return Tool{
		Name:    "tool",
		Summary: "a test tool",
		Daemon: func(_ context.Context, env *Env) error {
			rec.cmd, rec.env = "daemon", env
			return nil
		},
		CheckConfig: func(path string) error {
			if path == "bad.toml" {
				return &lifecycle.ConfigError{File: path, Problems: []lifecycle.Problem{{Key: "x", Message: "unknown key"}}}
			}
			return nil
		},
		Commands: []*Command{
			{
				Name: "status", Summary: "show status", Help: "Shows the status.", MaxArgs: 0,
				Flags: func(fs *flag.FlagSet) { fs.BoolVar(&asJSON, "json", false, "print JSON") },
				Run: func(_ context.Context, env *Env, args []string) error {
					rec.cmd, rec.args, rec.env, rec.json = "status", args, env, asJSON
					return nil
				},
			},
			{
				Name: "drop", Args: "QUEUE", Summary: "drop a queue", MinArgs: 1, MaxArgs: 1,
				Run: func(_ context.Context, env *Env, args []string) error {
					rec.cmd, rec.args, rec.env = "drop", args, env
					return fmt.Errorf("queue %q: does not exist", args[0])
				},
			},
		},
	}
}

func runTool(args ...string) (code int, stdout, stderr string, rec *recorded) {
	rec = &recorded{}
	var out, errb bytes.Buffer
	code = Main(context.Background(), testTool(rec), args, &out, &errb)
	return code, out.String(), errb.String(), rec
}

func TestCommandLineContract(t *testing.T) {
	cases := []struct {
		name       string
		args       []string
		code       int
		stdout     string // substring
		stderr     string // exact, unless empty
		wantCmd    string
		wantArgs   string
		wantDB     string
		wantConfig string
	}{
		{name: "version", args: []string{"--version"}, stdout: "tool " + Version + "\n"},
		{name: "help", args: []string{"--help"}, stdout: "Usage:"},
		{name: "short help", args: []string{"-h"}, stdout: "Commands:"},
		{name: "help command", args: []string{"help", "status"}, stdout: "Shows the status."},
		{name: "help unknown", args: []string{"help", "nope"}, code: 2, stderr: "tool: unknown command \"nope\" (see tool --help)\n"},
		{name: "unknown flag", args: []string{"--nope"}, code: 2, stderr: "tool: flag provided but not defined: -nope (see tool --help)\n"},
		{name: "unknown command", args: []string{"frobnicate"}, code: 2, stderr: "tool: unknown command \"frobnicate\" (see tool --help)\n"},
		{name: "daemon", args: []string{"-c", "f.toml", "-v"}, wantCmd: "daemon", wantConfig: "f.toml"},
		{name: "check config ok", args: []string{"-c", "ok.toml", "--check-config"}, stdout: "ok.toml: configuration OK"},
		{name: "check config bad", args: []string{"-c", "bad.toml", "--check-config"}, code: 2, stderr: "bad.toml: x: unknown key\n"},
		{name: "check config without file", args: []string{"--check-config"}, code: 2, stderr: "tool: --check-config needs -c FILE\n"},
		{name: "global flags before command", args: []string{"-d", "app", "status", "--json"}, wantCmd: "status", wantDB: "app"},
		{name: "global flags after command", args: []string{"status", "-d", "dbname=app host=/tmp"}, wantCmd: "status", wantDB: "dbname=app host=/tmp"},
		{name: "too many args", args: []string{"status", "extra"}, code: 2, stderr: "tool: usage: tool status\n"},
		{name: "missing arg", args: []string{"drop"}, code: 2, stderr: "tool: usage: tool drop QUEUE\n"},
		{name: "runtime error exits 1 naming the object", args: []string{"drop", "orders"}, code: 1, stderr: "tool: queue \"orders\": does not exist\n", wantCmd: "drop", wantArgs: "orders"},
		{name: "double dash", args: []string{"drop", "--", "-weird"}, code: 1, wantCmd: "drop", wantArgs: "-weird"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr, rec := runTool(c.args...)
			if code != c.code {
				t.Fatalf("exit %d, want %d; stderr %q", code, c.code, stderr)
			}
			if !strings.Contains(stdout, c.stdout) {
				t.Fatalf("stdout %q does not contain %q", stdout, c.stdout)
			}
			if c.stderr != "" && stderr != c.stderr {
				t.Fatalf("stderr %q, want %q", stderr, c.stderr)
			}
			if rec.cmd != c.wantCmd {
				t.Fatalf("ran %q, want %q", rec.cmd, c.wantCmd)
			}
			if c.wantArgs != "" && strings.Join(rec.args, " ") != c.wantArgs {
				t.Fatalf("args %q, want %q", rec.args, c.wantArgs)
			}
			if c.wantDB != "" && rec.env.DB != c.wantDB {
				t.Fatalf("DB %q, want %q", rec.env.DB, c.wantDB)
			}
			if c.wantConfig != "" && rec.env.ConfigPath != c.wantConfig {
				t.Fatalf("config %q, want %q", rec.env.ConfigPath, c.wantConfig)
			}
		})
	}
}

func TestCommandFlagsAndVerbosity(t *testing.T) {
	_, _, _, rec := runTool("status", "--json", "-q")
	if !rec.json {
		t.Fatal("--json after the command not parsed")
	}
	if !rec.env.LevelFromFlags || rec.env.Level.Enabled(-1) || rec.env.Level.Enabled(0) {
		t.Fatalf("-q did not set warn level: %v", rec.env.Level.Level())
	}
	_, _, _, rec = runTool("-v", "status")
	if !rec.env.Level.Enabled(-1) {
		t.Fatal("-v did not enable debug")
	}
}

func TestHelpListsEveryCommandAndOption(t *testing.T) {
	_, out, _, _ := runTool("--help")
	for _, want := range []string{"tool " + Version, "-c FILE", "-d DB", "--check-config", "status", "drop QUEUE", "Exit codes: 0 success, 1 runtime failure, 2 usage"} {
		if !strings.Contains(out, want) {
			t.Errorf("--help lacks %q:\n%s", want, out)
		}
	}
	_, out, _, _ = runTool("help", "status")
	if !strings.Contains(out, "--json") {
		t.Errorf("help status lacks its flag:\n%s", out)
	}
}

func TestNotImplementedSaysSoAndFails(t *testing.T) {
	var out, errb bytes.Buffer
	code := Main(context.Background(), Tool{Name: "londisted", Daemon: NotImplemented("replication")}, []string{"-c", "x.toml"}, &out, &errb)
	if code != 1 || errb.String() != "londisted: replication is not implemented yet\n" {
		t.Fatalf("exit %d stderr %q", code, errb.String())
	}
	code = Main(context.Background(), Tool{Name: "londisted", Daemon: NotImplemented("replication")}, []string{"-c", "x.toml", "--check-config"}, &out, &errb)
	if code != 1 {
		t.Fatalf("--check-config without config support: exit %d", code)
	}
}

func TestExitCode(t *testing.T) {
	for _, c := range []struct {
		err  error
		want int
	}{
		{nil, 0},
		{errors.New("boom"), 1},
		{Usagef("bad"), 2},
		{fmt.Errorf("wrapped: %w", Usagef("bad")), 2},
		{&lifecycle.ConfigError{}, 2},
		{fmt.Errorf("reload: %w", &lifecycle.ConfigError{}), 2},
	} {
		if got := ExitCode(c.err); got != c.want {
			t.Errorf("ExitCode(%v) = %d, want %d", c.err, got, c.want)
		}
	}
}

func TestConnString(t *testing.T) {
	for in, want := range map[string]string{
		"":                      "",
		"app":                   "dbname='app'",
		"it's":                  `dbname='it\'s'`,
		"host=/tmp dbname=app":  "host=/tmp dbname=app",
		"postgres://h/app?x=1":  "postgres://h/app?x=1",
		"postgresql://u@h:5/db": "postgresql://u@h:5/db",
		" spaced ":              "dbname='spaced'",
	} {
		if got := ConnString(in); got != want {
			t.Errorf("ConnString(%q) = %q, want %q", in, got, want)
		}
	}
}
func TestExitErrorCarriesItsOwnCode(t *testing.T) {
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
