// Package pgq is the Go library for PgQ queues: producing events, consuming batches,
// and the administrative calls the skytools daemons use.
package pgq
