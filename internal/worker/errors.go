package worker

import "errors"

// Errors returned by the worker.
var (
	// ErrInvalidConfig: a setting is out of range; the message names it.
	ErrInvalidConfig = errors.New("worker: invalid config")
	// ErrRunning: Run was called twice.
	ErrRunning = errors.New("worker: already running")
	// errAborted: the hard stop ended while a batch was in hand; its
	// messages stay unacked and are redelivered.
	errAborted = errors.New("worker: aborted")
)
