// Package cli implements the command line that every skytools binary shares
// (DESIGN.md section 3):
//
//	TOOL [-c FILE] [-d DB] [-v] [-q] [COMMAND [ARGS...]]
//	TOOL --version | --help | help COMMAND
//	TOOL -c FILE --check-config
//
// A binary describes itself as a [Tool] (its daemon mode, config check and admin
// commands) and hands it to [Main], which parses the arguments, builds the logger and
// maps the outcome to the exit code: 0 success, 1 runtime failure, 2 usage or
// configuration error. Global flags are accepted after the command too
// ("pgqd status -d app"), and commands may declare flags of their own.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/skytools-go/skytools/pkg/lifecycle"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Version is the skytools release all binaries report.
const Version = "0.1.0"

// Tool describes one binary.
type Tool struct {
	Name    string // "pgqd"
	Summary string // one line for --help
	// Daemon runs the daemon in the foreground (no COMMAND given). Nil means the tool
	// has no daemon mode.
	Daemon func(ctx context.Context, env *Env) error
	// CheckConfig loads and validates a config file for --check-config.
	CheckConfig func(path string) error
	// Commands are the admin commands, in the order --help lists them.
	Commands []*Command
	// Help is printed at the end of --help (config keys, where the docs are).
	Help string
}

// Command is one admin command ("pgqd status").
type Command struct {
	Name    string
	Args    string // argument synopsis: "QUEUE CONSUMER [--force]"
	Summary string // one line for --help
	Help    string // longer text for "help COMMAND"
	// MinArgs and MaxArgs bound the positional arguments; MaxArgs < 0 means no limit.
	MinArgs, MaxArgs int
	// Flags declares the command's own flags.
	Flags func(fs *flag.FlagSet)
	// Run does the work. args are the positional arguments.
	Run func(ctx context.Context, env *Env, args []string) error
}

// Env is what a daemon or command gets from the command line.
type Env struct {
	Tool       string
	ConfigPath string // -c
	DB         string // -d: connection string, URL or database name; "" means PG* variables
	Log        *zap.Logger
	// Level is the logger's level; LevelFromFlags is true when -v or -q set it.
	Level          *zap.AtomicLevel
	LevelFromFlags bool
	Stdout, Stderr io.Writer
}

// UsageError is a mistake on the command line or in the config: exit code 2.
type UsageError struct{ msg string }

func (e *UsageError) Error() string { return e.msg }

// Usagef returns a *UsageError.
func Usagef(format string, args ...any) error {
	return &UsageError{msg: fmt.Sprintf(format, args...)}
}

// ExitError carries an explicit exit code for commands whose caller reads more than
// success and failure: a restore_command must exit with a code above 125 so that
// PostgreSQL aborts recovery on corruption instead of taking it for "file not found".
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }

func (e *ExitError) Unwrap() error { return e.Err }

// ExitCode maps an error to the exit code of the contract. An *ExitError anywhere in
// the chain decides the code itself.
func ExitCode(err error) int {
	if err == nil {
		return 0
	}
	var xe *ExitError
	if errors.As(err, &xe) {
		return xe.Code
	}
	var ue *UsageError
	var ce *lifecycle.ConfigError
	if errors.As(err, &ue) || errors.As(err, &ce) {
		return 2
	}
	return 1
}

// NotImplemented is a Daemon for a tool whose logic has not been written yet: it says so
// and fails, rather than pretending to work.
func NotImplemented(what string) func(context.Context, *Env) error {
	return func(context.Context, *Env) error {
		return fmt.Errorf("%s is not implemented yet", what)
	}
}

type globals struct {
	config, db     string
	verbose, quiet bool
	checkConfig    bool
	version, help  bool
}

func (g *globals) register(fs *flag.FlagSet) {
	fs.StringVar(&g.config, "c", g.config, "read the configuration from `FILE`")
	fs.StringVar(&g.db, "d", g.db, "`DB` for admin commands: a connection string, URL or database name")
	fs.BoolVar(&g.verbose, "v", g.verbose, "verbose: log at debug level")
	fs.BoolVar(&g.quiet, "q", g.quiet, "quiet: log warnings and errors only")
}

// Main runs the tool with the command-line arguments (without the program name) and
// returns the exit code. Errors are printed to stderr on one line that names the object
// and the cause (a config error prints one "FILE: key: problem" line per problem).
func Main(ctx context.Context, tool Tool, args []string, stdout, stderr io.Writer) int {
	err := run(ctx, tool, args, stdout, stderr)
	if err != nil {
		var ce *lifecycle.ConfigError
		if errors.As(err, &ce) {
			fmt.Fprintln(stderr, ce.Error())
		} else {
			fmt.Fprintf(stderr, "%s: %v\n", tool.Name, err)
		}
	}
	return ExitCode(err)
}

func run(ctx context.Context, tool Tool, args []string, stdout, stderr io.Writer) error {
	var g globals
	fs := flag.NewFlagSet(tool.Name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	g.register(fs)
	fs.BoolVar(&g.checkConfig, "check-config", false, "validate the config file and exit")
	fs.BoolVar(&g.version, "version", false, "print the version and exit")
	fs.BoolVar(&g.help, "help", false, "print this help and exit")
	fs.BoolVar(&g.help, "h", false, "print this help and exit")
	if err := fs.Parse(args); err != nil {
		return Usagef("%v (see %s --help)", err, tool.Name)
	}
	switch {
	case g.version:
		fmt.Fprintf(stdout, "%s %s\n", tool.Name, Version)
		return nil
	case g.help:
		tool.usage(stdout, fs)
		return nil
	}
	rest := fs.Args()
	if len(rest) > 0 && rest[0] == "help" {
		return tool.helpCommand(stdout, fs, rest[1:])
	}

	if g.checkConfig {
		if len(rest) > 0 {
			return Usagef("--check-config takes no command")
		}
		if g.config == "" {
			return Usagef("--check-config needs -c FILE")
		}
		if tool.CheckConfig == nil {
			return fmt.Errorf("--check-config: %s has no configuration yet", tool.Name)
		}
		if err := tool.CheckConfig(g.config); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: configuration OK\n", g.config)
		return nil
	}

	if len(rest) == 0 {
		if tool.Daemon == nil {
			return Usagef("no command given (see %s --help)", tool.Name)
		}
		env := g.env(tool.Name, stdout, stderr)
		defer syncLog(env.Log)
		return tool.Daemon(ctx, env)
	}

	cmd := tool.command(rest[0])
	if cmd == nil {
		return Usagef("unknown command %q (see %s --help)", rest[0], tool.Name)
	}
	cfs := flag.NewFlagSet(tool.Name+" "+cmd.Name, flag.ContinueOnError)
	cfs.SetOutput(io.Discard)
	g.register(cfs)
	if cmd.Flags != nil {
		cmd.Flags(cfs)
	}
	pos, err := parseInterleaved(cfs, rest[1:])
	if err != nil {
		return Usagef("%s: %v (see %s help %s)", cmd.Name, err, tool.Name, cmd.Name)
	}
	if len(pos) < cmd.MinArgs || (cmd.MaxArgs >= 0 && len(pos) > cmd.MaxArgs) {
		return Usagef("usage: %s", strings.TrimSpace(tool.Name+" "+cmd.Name+" "+cmd.Args))
	}
	env := g.env(tool.Name, stdout, stderr)
	defer syncLog(env.Log)
	return cmd.Run(ctx, env, pos)
}

// parseInterleaved parses flags that may appear before, between or after positional
// arguments, as in "drop-queue orders --force". "--" ends flag parsing.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func (g *globals) env(tool string, stdout, stderr io.Writer) *Env {
	level := zap.NewAtomicLevelAt(zapcore.InfoLevel)
	switch {
	case g.verbose:
		level.SetLevel(zapcore.DebugLevel)
	case g.quiet:
		level.SetLevel(zapcore.WarnLevel)
	}
	log := lifecycle.NewLogger(lifecycle.LogOptions{
		Tool:    tool,
		Level:   level,
		Stderr:  stderr,
		Journal: lifecycle.JournalAvailable(),
	})
	return &Env{
		Tool:           tool,
		ConfigPath:     g.config,
		DB:             g.db,
		Log:            log,
		Level:          &level,
		LevelFromFlags: g.verbose || g.quiet,
		Stdout:         stdout,
		Stderr:         stderr,
	}
}

func syncLog(log *zap.Logger) {
	// Sync on a console or pipe can fail with EINVAL; nothing useful to do about it.
	_ = log.Sync()
}

func (t *Tool) command(name string) *Command {
	for _, c := range t.Commands {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func (t *Tool) usage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, "%s %s - %s\n\n", t.Name, Version, t.Summary)
	fmt.Fprintf(w, "Usage:\n")
	if t.Daemon != nil {
		fmt.Fprintf(w, "  %s -c FILE                  run the daemon in the foreground\n", t.Name)
		fmt.Fprintf(w, "  %s -c FILE --check-config   validate FILE and exit\n", t.Name)
	}
	if len(t.Commands) > 0 {
		fmt.Fprintf(w, "  %s [-c FILE] [-d DB] [-v] [-q] COMMAND [ARGS...]\n", t.Name)
	}
	fmt.Fprintf(w, "  %s --version | --help | help COMMAND\n\n", t.Name)
	fmt.Fprintf(w, "Options:\n")
	names := []string{"c", "d", "v", "q", "check-config", "version", "help"}
	for _, n := range names {
		f := fs.Lookup(n)
		argName, text := flag.UnquoteUsage(f)
		left := "-" + n
		if len(n) > 1 {
			left = "--" + n
		}
		if argName != "" && argName != "value" {
			left += " " + argName
		}
		fmt.Fprintf(w, "  %-18s %s\n", left, text)
	}
	if len(t.Commands) > 0 {
		fmt.Fprintf(w, "\nCommands:\n")
		for _, c := range t.Commands {
			left := c.Name
			if c.Args != "" {
				left += " " + c.Args
			}
			fmt.Fprintf(w, "  %-32s %s\n", left, c.Summary)
		}
	}
	fmt.Fprintf(w, "\nExit codes: 0 success, 1 runtime failure, 2 usage or configuration error.\n")
	fmt.Fprintf(w, "Signals (daemon): SIGHUP reloads the config, SIGTERM/SIGINT stop gracefully.\n")
	if t.Help != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimRight(t.Help, "\n"))
	}
}

func (t *Tool) helpCommand(w io.Writer, fs *flag.FlagSet, args []string) error {
	if len(args) == 0 {
		t.usage(w, fs)
		return nil
	}
	c := t.command(args[0])
	if c == nil {
		return Usagef("unknown command %q (see %s --help)", args[0], t.Name)
	}
	fmt.Fprintf(w, "Usage: %s [-d DB] %s %s\n\n%s\n", t.Name, c.Name, c.Args, c.Summary)
	if c.Help != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimRight(c.Help, "\n"))
	}
	if c.Flags != nil {
		cfs := flag.NewFlagSet(c.Name, flag.ContinueOnError)
		c.Flags(cfs)
		var lines []string
		cfs.VisitAll(func(f *flag.Flag) {
			argName, text := flag.UnquoteUsage(f)
			left := "--" + f.Name
			if argName != "" {
				left += " " + argName
			}
			lines = append(lines, fmt.Sprintf("  %-18s %s", left, text))
		})
		sort.Strings(lines)
		fmt.Fprintf(w, "\nOptions:\n%s\n", strings.Join(lines, "\n"))
	}
	return nil
}
