package load

import (
	"encoding/json"
	"slices"
	"time"
)

// Percentiles summarises a set of latencies.
type Percentiles struct {
	Count int
	Mean  time.Duration
	P50   time.Duration
	P90   time.Duration
	P99   time.Duration
	P999  time.Duration
	Max   time.Duration
}

// Summarize computes the percentiles of d by the nearest-rank method: the
// p-th percentile is the smallest value with at least p% of the values at
// or below it, so every figure reported is a latency that was observed. d
// is sorted in place.
func Summarize(d []time.Duration) Percentiles {
	if len(d) == 0 {
		return Percentiles{}
	}
	slices.Sort(d)
	var sum time.Duration
	for _, v := range d {
		sum += v
	}
	return Percentiles{
		Count: len(d),
		Mean:  sum / time.Duration(len(d)),
		P50:   Rank(d, 50),
		P90:   Rank(d, 90),
		P99:   Rank(d, 99),
		P999:  Rank(d, 99.9),
		Max:   d[len(d)-1],
	}
}

// Rank is the nearest-rank p-th percentile of sorted, which must not be empty.
func Rank(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	// ceil(p/100 * n) computed in integers of thousandths of a percent,
	// so that 99.9% of 1000 is exactly rank 999, not 999.0000001.
	k := (int64(p*1000+0.5)*int64(n) + 100_000 - 1) / 100_000
	if k < 1 {
		k = 1
	}
	if k > int64(n) {
		k = int64(n)
	}
	return sorted[k-1]
}

// MarshalJSON writes the figures in milliseconds, the unit people read.
func (p Percentiles) MarshalJSON() ([]byte, error) {
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	return json.Marshal(struct {
		Count  int     `json:"count"`
		MeanMS float64 `json:"mean_ms"`
		P50MS  float64 `json:"p50_ms"`
		P90MS  float64 `json:"p90_ms"`
		P99MS  float64 `json:"p99_ms"`
		P999MS float64 `json:"p99_9_ms"`
		MaxMS  float64 `json:"max_ms"`
	}{p.Count, ms(p.Mean), ms(p.P50), ms(p.P90), ms(p.P99), ms(p.P999), ms(p.Max)})
}
