package load

import (
	"time"
)

// Point is one interval of a run's time series.
type Point struct {
	// At is the interval's start, in seconds since the run began.
	At float64 `json:"t"`
	// Accepted and Decided are per-second rates over the interval;
	// Applied counts only applied outcomes.
	Accepted float64 `json:"accepted_per_s"`
	Applied  float64 `json:"applied_per_s"`
	Decided  float64 `json:"decided_per_s"`
	// Latencies of the requests accepted (AcceptP*) and decided (AppliedP*)
	// in the interval, in milliseconds; zero when there were none.
	AcceptP50  float64 `json:"accept_p50_ms"`
	AcceptP99  float64 `json:"accept_p99_ms"`
	AppliedP50 float64 `json:"applied_p50_ms"`
	AppliedP99 float64 `json:"applied_p99_ms"`
}

// timing is one request's timeline in nanoseconds since the run began;
// zero means it never happened.
type timing struct {
	due, accepted, decided int64
	applied                bool
}

// buildSeries bins timings into intervals of width step.
func buildSeries(ts []timing, step time.Duration) []Point {
	var end int64
	for _, t := range ts {
		end = max(end, t.accepted, t.decided)
	}
	if end == 0 || step <= 0 {
		return nil
	}
	n := int(end/int64(step)) + 1
	type bin struct {
		accepted, applied, decided int
		acceptLat, appliedLat      []time.Duration
	}
	bins := make([]bin, n)
	for _, t := range ts {
		if t.accepted > 0 {
			b := &bins[t.accepted/int64(step)]
			b.accepted++
			if t.due > 0 {
				b.acceptLat = append(b.acceptLat, time.Duration(t.accepted-t.due))
			}
		}
		if t.decided > 0 {
			b := &bins[t.decided/int64(step)]
			b.decided++
			if t.applied {
				b.applied++
			}
			if t.accepted > 0 {
				b.appliedLat = append(b.appliedLat, time.Duration(t.decided-t.accepted))
			}
		}
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	perSec := float64(time.Second) / float64(step)
	out := make([]Point, n)
	for i, b := range bins {
		p := Point{
			At:       float64(i) * step.Seconds(),
			Accepted: float64(b.accepted) * perSec,
			Applied:  float64(b.applied) * perSec,
			Decided:  float64(b.decided) * perSec,
		}
		if len(b.acceptLat) > 0 {
			s := Summarize(b.acceptLat)
			p.AcceptP50, p.AcceptP99 = ms(s.P50), ms(s.P99)
		}
		if len(b.appliedLat) > 0 {
			s := Summarize(b.appliedLat)
			p.AppliedP50, p.AppliedP99 = ms(s.P50), ms(s.P99)
		}
		out[i] = p
	}
	return out
}

// seriesStep picks an interval giving at most about 300 points, in whole
// seconds once runs are longer than a few minutes.
func seriesStep(d time.Duration) time.Duration {
	switch {
	case d <= 30*time.Second:
		return 250 * time.Millisecond
	case d <= 5*time.Minute:
		return time.Second
	default:
		return (d/300 + time.Second - 1).Truncate(time.Second)
	}
}
