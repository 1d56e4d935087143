package worker

import "errors"

// Errors returned by the worker.
var (
	// ErrInvalidConfig: a setting is out of range; the message names it.
	ErrInvalidConfig = errors.New("worker: invalid config")
	// ErrStarted: Start was called twice.
	ErrStarted = errors.New("worker: already started")
	// ErrNotStarted: Stop was called before Start.
	ErrNotStarted = errors.New("worker: not started")
	// errAborted: the hard-stop context ended while a batch was in hand;
	// its messages stay unacked and are redelivered.
	errAborted = errors.New("worker: aborted")
)
