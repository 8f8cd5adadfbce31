package pgq

import "unicode/utf8"

// maxIdentifierBytes is PostgreSQL's identifier length limit (NAMEDATALEN - 1), which
// applies to NOTIFY channel names.
const maxIdentifierBytes = 63

// TickChannel is the NOTIFY channel on which pgqd announces each new tick of queue,
// with the tick id as payload: "pgq_tick." followed by the queue name, cut at a UTF-8
// boundary to PostgreSQL's 63-byte limit. Consumers LISTEN on it to start the next
// batch at once instead of polling; two queues whose names share their first 54 bytes
// share a channel, which only costs a spurious wake-up.
//
// pgqd sends the notification in the transaction that created the tick, so it arrives
// exactly when the tick becomes visible.
func TickChannel(queue string) string {
	ch := "pgq_tick." + queue
	if len(ch) <= maxIdentifierBytes {
		return ch
	}
	ch = ch[:maxIdentifierBytes]
	for !utf8.ValidString(ch) {
		ch = ch[:len(ch)-1]
	}
	return ch
}
