package load

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"time"
)

// rssSampler records the peak resident set size of some processes while a
// run lasts, from /proc (Linux only; elsewhere it records nothing).
type rssSampler struct {
	pids map[string]int
	peak map[string]int64
	stop chan struct{}
	done chan struct{}
}

func sampleRSS(pids map[string]int) *rssSampler {
	s := &rssSampler{pids: pids, peak: map[string]int64{}, stop: make(chan struct{}), done: make(chan struct{})}
	if len(pids) == 0 {
		close(s.done)
		return s
	}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			for label, pid := range s.pids {
				if v, err := readRSS(pid); err == nil && v > s.peak[label] {
					s.peak[label] = v
				}
			}
			select {
			case <-s.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

// finish stops sampling and returns the peaks in bytes.
func (s *rssSampler) finish() map[string]int64 {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
	if len(s.peak) == 0 {
		return nil
	}
	return s.peak
}

// readRSS reads a process's resident set size in bytes.
func readRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		rest, ok := bytes.CutPrefix(line, []byte("VmRSS:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) < 1 {
			break
		}
		kb, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil {
			return 0, err
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("pid %d: no VmRSS", pid)
}
