package load

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// job is one request handed to a sender: its index, and in an open loop
// the time it was due. A closed loop leaves due zero: the request is due
// when a sender takes it.
type job struct {
	i   int
	due time.Time
}

// dueAt is when j counts as sent, for the accept latency.
func (j job) dueAt() time.Time {
	if j.due.IsZero() {
		return time.Now()
	}
	return j.due
}

// sender takes jobs until the channel closes or ctx ends.
type sender func(ctx context.Context, jobs <-chan job)

// drive hands requests 0..n-1 to concurrency senders, as fast as they take
// them (rate 0) or each at its slot of a fixed rate. In an open loop a
// request's latency counts from its slot, so time spent queued behind slow
// senders is not hidden (no coordinated omission). It returns when every
// request was handed out and the senders have returned, or when ctx ends.
// window is how many jobs one sender takes at a time (its batch).
func drive(ctx context.Context, n, concurrency, window int, rate float64, send sender) {
	buffer := concurrency * max(window, 1)
	if rate > 0 {
		// An open loop never waits for a sender: the queue holds the backlog.
		buffer = n
	}
	jobs := make(chan job, buffer)
	var wg sync.WaitGroup
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			send(ctx, jobs)
		}()
	}
	start := time.Now()
	interval := 0.0
	if rate > 0 {
		interval = float64(time.Second) / rate
	}
dispatch:
	for i := 0; i < n; i++ {
		j := job{i: i}
		if rate > 0 {
			j.due = start.Add(time.Duration(float64(i) * interval))
			// Sleep only when more than a millisecond ahead: timers are
			// not finer than that, and the due time keeps the latency
			// honest when a request goes out a little late.
			if ahead := time.Until(j.due); ahead > time.Millisecond {
				select {
				case <-ctx.Done():
					break dispatch
				case <-time.After(ahead):
				}
			}
		}
		select {
		case <-ctx.Done():
			break dispatch
		case jobs <- j:
		}
	}
	close(jobs)
	wg.Wait()
}

// progress prints a status line every second until stop is called: to a
// terminal it rewrites one line, elsewhere it prints a line every five
// seconds.
func progress(w io.Writer, label string, t *tracker) (stop func()) {
	if w == nil {
		return func() {}
	}
	tty := false
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		var lastAcc, lastDec int64
		for n := 1; ; n++ {
			select {
			case <-done:
				if tty {
					fmt.Fprintln(w)
				}
				return
			case <-tick.C:
			}
			acc, dec := t.nAccepted.Load(), t.nDecided.Load()
			line := fmt.Sprintf("%s %4ds  accepted %8d (%6d/s)  decided %8d (%6d/s)  applied %8d  rejected %6d  waiting %6d  failed %d",
				label, int(time.Since(t.start).Seconds()), acc, acc-lastAcc, dec, dec-lastDec,
				t.nApplied.Load(), t.nRejected.Load(), t.outstanding(), t.errN.Load())
			lastAcc, lastDec = acc, dec
			switch {
			case tty:
				fmt.Fprintf(w, "\r%s", line)
			case n%5 == 0:
				fmt.Fprintln(w, line)
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}

// waitDrained waits until every accepted request of t has an outcome, or
// timeout passes without progress, or ctx ends. It reports whether t
// drained.
func waitDrained(ctx context.Context, t *tracker, timeout time.Duration) bool {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	last := t.nDecided.Load()
	lastChange := time.Now()
	for {
		if t.outstanding() == 0 && t.drained() {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
		if d := t.nDecided.Load(); d != last {
			last, lastChange = d, time.Now()
		} else if time.Since(lastChange) > timeout {
			return false
		}
	}
}
