package lifecycle

import (
	"bytes"
	"strings"
	"testing"

	"github.com/coreos/go-systemd/v22/journal"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

func TestJournalFieldName(t *testing.T) {
	for in, want := range map[string]string{
		"queue":         "QUEUE",
		"consumer-name": "CONSUMER_NAME",
		"_private":      "PRIVATE",
		"9lives":        "F_9LIVES",
		"message":       "F_MESSAGE",
		"priority":      "F_PRIORITY",
		"":              "FIELD",
		"db.name":       "DB_NAME",
	} {
		if got := JournalFieldName(in); got != want {
			t.Errorf("JournalFieldName(%q) = %q, want %q", in, got, want)
		}
	}
}

type sent struct {
	msg  string
	prio journal.Priority
	vars map[string]string
}

func TestJournalCoreSendsFieldsAsJournalVariables(t *testing.T) {
	var got []sent
	level := zap.NewAtomicLevelAt(zapcore.InfoLevel)
	core := &journalCore{LevelEnabler: level, tool: "pgqd", send: func(msg string, p journal.Priority, vars map[string]string) error {
		got = append(got, sent{msg, p, vars})
		return nil
	}}
	log := zap.New(core).With(zap.String("database", "app"))
	log.Info("ticked", zap.String("queue", "orders"), zap.Int("events", 12))
	log.Debug("hidden at info level")
	log.Error("failed", zap.String("queue", "billing main"))

	if len(got) != 2 {
		t.Fatalf("sent %d entries, want 2 (debug filtered)", len(got))
	}
	e := got[0]
	if e.prio != journal.PriInfo || e.vars["QUEUE"] != "orders" || e.vars["DATABASE"] != "app" || e.vars["EVENTS"] != "12" || e.vars["SYSLOG_IDENTIFIER"] != "pgqd" {
		t.Fatalf("entry 0: %+v", e)
	}
	if e.msg != "ticked database=app events=12 queue=orders" {
		t.Fatalf("message %q", e.msg)
	}
	if got[1].prio != journal.PriErr || !strings.Contains(got[1].msg, `queue="billing main"`) {
		t.Fatalf("entry 1: %+v", got[1])
	}
}

func TestConsoleLoggerHonoursLevel(t *testing.T) {
	var buf bytes.Buffer
	level := zap.NewAtomicLevelAt(zapcore.WarnLevel)
	log := NewLogger(LogOptions{Tool: "x", Level: level, Stderr: &buf})
	log.Info("quiet")
	log.Warn("loud", zap.String("queue", "q1"))
	level.SetLevel(zapcore.DebugLevel)
	log.Debug("now visible")
	out := buf.String()
	if strings.Contains(out, "quiet") || !strings.Contains(out, "loud") || !strings.Contains(out, `"queue": "q1"`) || !strings.Contains(out, "now visible") {
		t.Fatalf("console output:\n%s", out)
	}
}

func TestParseLevel(t *testing.T) {
	for _, s := range []string{"debug", "info", "warn", "warning", "error", "INFO", ""} {
		if _, err := ParseLevel(s); err != nil {
			t.Errorf("ParseLevel(%q): %v", s, err)
		}
	}
	if _, err := ParseLevel("trace"); err == nil {
		t.Error("ParseLevel(trace) accepted")
	}
}
