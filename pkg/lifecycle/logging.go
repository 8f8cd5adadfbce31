package lifecycle

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	"github.com/coreos/go-systemd/v22/journal"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// ParseLevel turns "debug", "info", "warn" or "error" into a zap level.
func ParseLevel(s string) (zapcore.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return zapcore.DebugLevel, nil
	case "info", "":
		return zapcore.InfoLevel, nil
	case "warn", "warning":
		return zapcore.WarnLevel, nil
	case "error":
		return zapcore.ErrorLevel, nil
	}
	return zapcore.InfoLevel, fmt.Errorf("unknown log level %q: use debug, info, warn or error", s)
}

// LogOptions chooses where a logger writes.
type LogOptions struct {
	// Tool names the program; under journald it becomes SYSLOG_IDENTIFIER.
	Tool string
	// Level is shared with whoever changes it later (SIGHUP, -v).
	Level zap.AtomicLevel
	// Stderr is where console logs go when journald is not in use.
	Stderr io.Writer
	// Journal selects journald-native logging; see JournalAvailable.
	Journal bool
}

// JournalAvailable reports whether stderr is connected to journald (JOURNAL_STREAM names
// it) and the journal socket is there, so logs should go to journald with fields.
func JournalAvailable() bool {
	ok, err := journal.StderrIsJournalStream()
	return err == nil && ok && journal.Enabled()
}

// NewLogger builds the daemon's logger. On a terminal or a plain pipe it writes
// human-readable lines to stderr; under journald it sends each entry natively with every
// zap field as a journal field (queue -> QUEUE=), so `journalctl QUEUE=orders` works.
func NewLogger(opts LogOptions) *zap.Logger {
	var core zapcore.Core
	if opts.Journal {
		core = &journalCore{LevelEnabler: opts.Level, tool: opts.Tool, send: journal.Send}
	} else {
		enc := zap.NewDevelopmentEncoderConfig()
		enc.EncodeTime = zapcore.ISO8601TimeEncoder
		enc.EncodeCaller = nil
		enc.CallerKey = ""
		enc.NameKey = ""
		core = zapcore.NewCore(zapcore.NewConsoleEncoder(enc), zapcore.Lock(zapcore.AddSync(opts.Stderr)), opts.Level)
	}
	return zap.New(core)
}

// journalCore is a zapcore.Core that writes entries to journald's native protocol.
type journalCore struct {
	zapcore.LevelEnabler
	tool   string
	fields []zapcore.Field
	send   func(msg string, prio journal.Priority, vars map[string]string) error
	mu     sync.Mutex // serializes sends so entries keep their order
}

func (c *journalCore) With(fields []zapcore.Field) zapcore.Core {
	return &journalCore{
		LevelEnabler: c.LevelEnabler,
		tool:         c.tool,
		fields:       append(append([]zapcore.Field(nil), c.fields...), fields...),
		send:         c.send,
	}
}

func (c *journalCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *journalCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range c.fields {
		f.AddTo(enc)
	}
	for _, f := range fields {
		f.AddTo(enc)
	}
	vars, text := journalFields(enc.Fields)
	if c.tool != "" {
		vars["SYSLOG_IDENTIFIER"] = c.tool
	}
	if e.LoggerName != "" {
		vars["LOGGER"] = e.LoggerName
	}
	msg := e.Message
	if text != "" {
		msg += " " + text
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.send(msg, journalPriority(e.Level), vars)
}

func (c *journalCore) Sync() error { return nil }

// journalFields turns zap fields into journal variables (upper-case names) and a
// "key=value" rendering appended to MESSAGE for plain `journalctl` output.
func journalFields(fields map[string]any) (map[string]string, string) {
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	vars := make(map[string]string, len(fields)+2)
	var text strings.Builder
	for _, k := range keys {
		v := fieldText(fields[k])
		vars[JournalFieldName(k)] = v
		if text.Len() > 0 {
			text.WriteByte(' ')
		}
		text.WriteString(k)
		text.WriteByte('=')
		if strings.ContainsAny(v, " \"=") || v == "" {
			fmt.Fprintf(&text, "%q", v)
		} else {
			text.WriteString(v)
		}
	}
	return vars, text.String()
}

func fieldText(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case fmt.Stringer:
		return x.String()
	case error:
		return x.Error()
	case map[string]any, []any:
		b, err := json.Marshal(x)
		if err != nil {
			return fmt.Sprint(x)
		}
		return string(b)
	}
	return fmt.Sprint(v)
}

// JournalFieldName maps a zap field key to a journald field name: upper case, only
// A-Z, 0-9 and _, not starting with _ or a digit, and never one of journald's own.
func JournalFieldName(k string) string {
	var b strings.Builder
	for _, r := range strings.ToUpper(k) {
		switch {
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	name := strings.TrimLeft(b.String(), "_")
	switch {
	case name == "":
		name = "FIELD"
	case name[0] >= '0' && name[0] <= '9':
		name = "F_" + name
	}
	switch name {
	case "MESSAGE", "MESSAGE_ID", "PRIORITY", "SYSLOG_IDENTIFIER", "SYSLOG_FACILITY", "SYSLOG_PID", "CODE_FILE", "CODE_LINE", "CODE_FUNC", "ERRNO":
		name = "F_" + name
	}
	if len(name) > 64 {
		name = name[:64]
	}
	return name
}

func journalPriority(l zapcore.Level) journal.Priority {
	switch {
	case l <= zapcore.DebugLevel:
		return journal.PriDebug
	case l == zapcore.InfoLevel:
		return journal.PriInfo
	case l == zapcore.WarnLevel:
		return journal.PriWarning
	case l == zapcore.ErrorLevel:
		return journal.PriErr
	default:
		return journal.PriCrit
	}
}
