package load

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestSummarizeNearestRank(t *testing.T) {
	t.Parallel()
	d := make([]time.Duration, 1000)
	for i := range d {
		d[i] = time.Duration(i+1) * time.Millisecond
	}
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(d), func(i, j int) { d[i], d[j] = d[j], d[i] })
	p := Summarize(d)
	want := Percentiles{Count: 1000, Mean: 500500 * time.Microsecond, P50: 500 * time.Millisecond, P90: 900 * time.Millisecond,
		P99: 990 * time.Millisecond, P999: 999 * time.Millisecond, Max: 1000 * time.Millisecond}
	if p != want {
		t.Errorf("got %+v\nwant %+v", p, want)
	}
}

func TestRankSmallSets(t *testing.T) {
	t.Parallel()
	one := []time.Duration{7}
	for _, q := range []float64{0, 50, 99.9, 100} {
		if got := Rank(one, q); got != 7 {
			t.Errorf("one value, p%v = %v", q, got)
		}
	}
	ten := []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for q, want := range map[float64]time.Duration{50: 5, 90: 9, 91: 10, 99: 10, 99.9: 10, 10: 1, 11: 2} {
		if got := Rank(ten, q); got != want {
			t.Errorf("ten values, p%v = %v, want %v", q, got, want)
		}
	}
	if p := Summarize(nil); p.Count != 0 || p.Max != 0 {
		t.Errorf("empty: %+v", p)
	}
}
