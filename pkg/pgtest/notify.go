package pgtest

import (
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// NotifySocket is systemd's side of the sd_notify protocol for end-to-end tests: a
// unixgram socket to pass to a daemon as NOTIFY_SOCKET, collecting each line it sends
// (READY=1, STATUS=..., WATCHDOG=1, RELOADING=1, STOPPING=1).
type NotifySocket struct {
	Path string
	msgs chan string
}

// NewNotifySocket listens on a fresh socket, closed when the test ends.
func NewNotifySocket(t testing.TB) *NotifySocket {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatalf("pgtest: notify socket: %v", err)
	}
	s := &NotifySocket{Path: path, msgs: make(chan string, 100000)}
	go func() {
		buf := make([]byte, 65536)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				close(s.msgs)
				return
			}
			for _, line := range strings.Split(strings.TrimSpace(string(buf[:n])), "\n") {
				s.msgs <- line
			}
		}
	}()
	t.Cleanup(func() { conn.Close() })
	return s
}

// Env is the NOTIFY_SOCKET variable for the daemon's environment.
func (s *NotifySocket) Env() string { return "NOTIFY_SOCKET=" + s.Path }

// Until reads messages until one satisfies match (failing the test after timeout; what
// names the awaited message in the failure)
// and returns the messages read before it.
func (s *NotifySocket) Until(t testing.TB, timeout time.Duration, what string, match func(string) bool) []string {
	t.Helper()
	var seen []string
	deadline := time.After(timeout)
	for {
		select {
		case m, ok := <-s.msgs:
			if !ok {
				t.Fatalf("notify socket closed while waiting for %s; saw %q", what, lastN(seen, 20))
			}
			if match(m) {
				return seen
			}
			seen = append(seen, m)
		case <-deadline:
			t.Fatalf("no %s within %s; saw %q", what, timeout, lastN(seen, 20))
		}
	}
}

// Is matches a message exactly; HasPrefix by prefix.
func Is(s string) func(string) bool { return func(m string) bool { return m == s } }
func HasPrefix(s string) func(string) bool {
	return func(m string) bool { return strings.HasPrefix(m, s) }
}

func lastN(s []string, n int) []string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago, for a daemon's
// metrics_listen in a test.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("pgtest: find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
