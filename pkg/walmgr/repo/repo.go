// Package repo is where walmgrd keeps what it archives: a small key/value storage
// interface ([Store]) and its implementation on a directory ([Dir]), local disk or a
// mounted network filesystem. An object store can implement the same interface later:
// every operation is a whole-object write, read, list or delete by key.
//
// Keys are slash-separated relative paths ("wal/0000000100000000/000000010000000000000003").
// The one promise everything above relies on: an object is never visible under its key
// until it is complete and durable, and a commit never replaces an existing object.
package repo

import (
	"context"
	"errors"
	"io"
	"time"
)

// ErrNotFound means no object exists under the key. Callers rely on it meaning exactly
// that: a missing repository, a permission problem or an I/O error is never ErrNotFound.
var ErrNotFound = errors.New("not found")

// ErrExists means a commit found an object already under its key and left it alone.
var ErrExists = errors.New("already exists")

// Store is the repository storage.
type Store interface {
	// Create starts a new object. Nothing is visible under key until Commit.
	Create(ctx context.Context, key string) (Writer, error)
	// Open opens an object for reading; ErrNotFound if there is none.
	Open(ctx context.Context, key string) (Object, error)
	// Stat describes one object; ErrNotFound if there is none.
	Stat(ctx context.Context, key string) (Info, error)
	// List returns every committed object whose key starts with prefix + "/" (or every
	// object for ""), sorted by key. Objects being written are not listed.
	List(ctx context.Context, prefix string) ([]Info, error)
	// Remove deletes an object; removing a missing object is not an error.
	Remove(ctx context.Context, key string) error
	// Persist makes an existing object durable (for a re-archived file whose first
	// commit may not have reached stable storage before a crash).
	Persist(ctx context.Context, key string) error
	// Abandoned lists uncommitted writes older than age, left by killed processes, and
	// RemoveAbandoned deletes one of them.
	Abandoned(ctx context.Context, age time.Duration) ([]string, error)
	RemoveAbandoned(ctx context.Context, name string) error
}

// Writer is an object being written.
type Writer interface {
	io.Writer
	// Commit makes the object durable and then visible under its key. It returns an
	// error wrapping ErrExists, and leaves the existing object untouched, if the key
	// is taken.
	Commit(ctx context.Context) error
	// Abort throws the unfinished object away. It is safe after Commit (a no-op).
	Abort() error
}

// Object is a committed object opened for reading.
type Object interface {
	io.ReaderAt
	io.Closer
	Size() int64
}

// Info describes an object.
type Info struct {
	Key     string
	Size    int64
	ModTime time.Time
}
