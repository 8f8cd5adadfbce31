package pgq

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestTickChannel(t *testing.T) {
	if got := TickChannel("orders"); got != "pgq_tick.orders" {
		t.Fatalf("got %q", got)
	}
	long := strings.Repeat("q", 100)
	if got := TickChannel(long); len(got) != 63 || !strings.HasPrefix(got, "pgq_tick.qqq") {
		t.Fatalf("long name: %q (%d bytes)", got, len(got))
	}
	multi := strings.Repeat("é", 40) // 2 bytes each
	got := TickChannel(multi)
	if len(got) > 63 || !utf8.ValidString(got) {
		t.Fatalf("multibyte name cut badly: %q (%d bytes)", got, len(got))
	}
}
