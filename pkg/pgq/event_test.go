package pgq

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

func eventFields(timeFormat int16) []pgconn.FieldDescription {
	oids := []uint32{pgtype.Int8OID, pgtype.TimestamptzOID, pgtype.Int8OID, pgtype.Int4OID,
		pgtype.TextOID, pgtype.TextOID, pgtype.TextOID, pgtype.TextOID, pgtype.TextOID, pgtype.TextOID}
	fds := make([]pgconn.FieldDescription, len(oids))
	for i, oid := range oids {
		fds[i] = pgconn.FieldDescription{DataTypeOID: oid, Format: pgtype.BinaryFormatCode}
	}
	fds[1].Format = timeFormat
	return fds
}

func be64(v int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(v)) }

func TestDecodeEventKeepsNullsEmptyStringsAndTime(t *testing.T) {
	when := time.Date(2026, 11, 21, 10, 0, 0, 123456000, time.UTC)
	usec := when.UnixMicro() - y2kUnixMicros
	vals := [][]byte{be64(42), be64(usec), be64(7), nil, []byte("type"), []byte(""), nil, []byte("x"), nil, []byte("é")}
	ev, ok := decodeEvent(eventFields(pgtype.BinaryFormatCode), vals)
	if !ok {
		t.Fatal("binary row not decoded")
	}
	want := Event{ID: 42, TxID: 7, Type: Text("type"), Data: Text(""), Extra2: Text("x"), Extra4: Text("é")}
	if !ev.Time.Equal(when) {
		t.Errorf("time %v, want %v", ev.Time, when)
	}
	ev.Time = time.Time{}
	if ev != want {
		t.Errorf("decoded %+v\n want   %+v", ev, want)
	}

	vals[3] = binary.BigEndian.AppendUint32(nil, 3)
	if ev, _ := decodeEvent(eventFields(pgtype.BinaryFormatCode), vals); ev.Retry != 3 {
		t.Errorf("retry %d, want 3", ev.Retry)
	}
	// What the fast path does not handle is left to pgx's Scan.
	if _, ok := decodeEvent(eventFields(pgtype.TextFormatCode), vals); ok {
		t.Error("text-format time decoded as binary")
	}
	vals[1] = be64(1<<63 - 1) // infinity
	if _, ok := decodeEvent(eventFields(pgtype.BinaryFormatCode), vals); ok {
		t.Error("infinite time decoded")
	}
	if _, ok := decodeEvent(eventFields(pgtype.BinaryFormatCode)[:9], vals[:9]); ok {
		t.Error("short row decoded")
	}
}

// FuzzDecodeEvent feeds arbitrary column values to the binary decoder: it must not
// panic, and what it accepts must round-trip the text fields byte for byte.
func FuzzDecodeEvent(f *testing.F) {
	f.Add(be64(1), be64(0), be64(2), []byte{0, 0, 0, 1}, []byte("t"), []byte(""), []byte("x"), false)
	f.Add([]byte{1}, be64(1<<63-1), []byte{}, []byte{}, []byte{}, []byte{}, []byte{}, true)
	f.Fuzz(func(t *testing.T, id, tm, txid, retry, typ, data, extra []byte, nulls bool) {
		texts := [][]byte{typ, data, extra, nil, extra, data}
		if nulls {
			texts[1] = nil
		}
		vals := append([][]byte{id, tm, txid, retry}, texts...)
		ev, ok := decodeEvent(eventFields(pgtype.BinaryFormatCode), vals)
		if !ok {
			return
		}
		got := []pgtype.Text{ev.Type, ev.Data, ev.Extra1, ev.Extra2, ev.Extra3, ev.Extra4}
		for i, v := range texts {
			if got[i].Valid != (v != nil) || got[i].String != string(v) {
				t.Fatalf("field %d: got %+v from %q", i, got[i], v)
			}
		}
	})
}
