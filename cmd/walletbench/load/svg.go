package load

import (
	"bufio"
	"fmt"
	"html"
	"io"
	"math"
	"strconv"
	"strings"
)

// Plot sizes, in SVG user units (pixels).
const (
	svgWidth   = 960
	panelH     = 340
	marginL    = 80
	marginR    = 20
	marginT    = 50
	panelGap   = 70
	svgBottomM = 50
)

// line is one series of a chart.
type line struct {
	name   string
	color  string
	dashed bool
	xs, ys []float64 // a y <= 0 is a gap on a log axis
}

// WriteSVG draws the runs' throughput (accepted/s and applied/s) and
// latency (p50 and p99 of accept and accept-to-applied, log scale) over
// time, one line per run and figure.
func WriteSVG(w io.Writer, title string, runs []Result) error {
	palette := [][2]string{{"#1f77b4", "#ff7f0e"}, {"#2ca02c", "#d62728"}, {"#9467bd", "#8c564b"}}
	var thr, lat []line
	for i, res := range runs {
		c := palette[i%len(palette)]
		var t, acc, app, aP50, aP99, eP50, eP99 []float64
		for _, p := range res.Series {
			t = append(t, p.At)
			acc = append(acc, p.Accepted)
			app = append(app, p.Applied)
			aP50, aP99 = append(aP50, p.AcceptP50), append(aP99, p.AcceptP99)
			eP50, eP99 = append(eP50, p.AppliedP50), append(eP99, p.AppliedP99)
		}
		thr = append(thr,
			line{name: res.Name + " accepted/s", color: c[0], xs: t, ys: acc},
			line{name: res.Name + " applied/s", color: c[1], xs: t, ys: app})
		lat = append(lat,
			line{name: res.Name + " accept p99", color: c[0], xs: t, ys: aP99},
			line{name: res.Name + " accept p50", color: c[0], dashed: true, xs: t, ys: aP50})
		if res.Via != "sync" {
			// The baseline is decided when accepted: its second figure
			// would repeat the first.
			lat = append(lat,
				line{name: res.Name + " accept-to-applied p99", color: c[1], xs: t, ys: eP99},
				line{name: res.Name + " accept-to-applied p50", color: c[1], dashed: true, xs: t, ys: eP50})
		}
	}
	height := marginT + 2*panelH + panelGap + svgBottomM
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		svgWidth, height, svgWidth, height)
	fmt.Fprintf(bw, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(bw, `<text x="%d" y="24" font-size="16" font-weight="bold">%s</text>`+"\n", marginL, html.EscapeString(title))
	drawChart(bw, marginT, "throughput (requests/s)", false, thr)
	drawChart(bw, marginT+panelH+panelGap, "latency (ms, log scale)", true, lat)
	fmt.Fprintln(bw, `</svg>`)
	return bw.Flush()
}

// drawChart draws one panel with its top at y0.
func drawChart(w io.Writer, y0 float64, title string, logY bool, lines []line) {
	x0, pw, ph := float64(marginL), float64(svgWidth-marginL-marginR), float64(panelH)
	var maxX, minY, maxY float64
	minY = math.Inf(1)
	for _, l := range lines {
		for i, y := range l.ys {
			maxX = max(maxX, l.xs[i])
			if y > 0 {
				minY, maxY = min(minY, y), max(maxY, y)
			}
		}
	}
	if maxX == 0 {
		maxX = 1
	}
	if maxY == 0 {
		minY, maxY = 1, 1
	}
	var yTicks []float64
	var ymap func(float64) float64
	if logY {
		lo, hi := math.Floor(math.Log10(minY)), math.Ceil(math.Log10(maxY))
		if hi == lo {
			hi++
		}
		for e := lo; e <= hi; e++ {
			yTicks = append(yTicks, math.Pow(10, e))
		}
		ymap = func(y float64) float64 { return y0 + ph - (math.Log10(y)-lo)/(hi-lo)*ph }
	} else {
		top, step := niceScale(maxY)
		for i := 0; float64(i)*step <= top+step/2; i++ {
			yTicks = append(yTicks, float64(i)*step)
		}
		ymap = func(y float64) float64 { return y0 + ph - y/top*ph }
	}
	xTop, xStep := niceScale(maxX)
	xmap := func(x float64) float64 { return x0 + x/xTop*pw }

	fmt.Fprintf(w, `<text x="%g" y="%g" font-weight="bold">%s</text>`+"\n", x0, y0-8, html.EscapeString(title))
	fmt.Fprintf(w, `<rect x="%g" y="%g" width="%g" height="%g" fill="none" stroke="#888"/>`+"\n", x0, y0, pw, ph)
	for _, v := range yTicks {
		y := ymap(v)
		fmt.Fprintf(w, `<line x1="%g" y1="%.1f" x2="%g" y2="%.1f" stroke="#ddd"/>`+"\n", x0, y, x0+pw, y)
		fmt.Fprintf(w, `<text x="%g" y="%.1f" text-anchor="end">%s</text>`+"\n", x0-6, y+4, tickLabel(v))
	}
	for i := 0; float64(i)*xStep <= xTop+xStep/2; i++ {
		v := float64(i) * xStep
		x := xmap(v)
		fmt.Fprintf(w, `<line x1="%.1f" y1="%g" x2="%.1f" y2="%g" stroke="#ddd"/>`+"\n", x, y0, x, y0+ph)
		fmt.Fprintf(w, `<text x="%.1f" y="%g" text-anchor="middle">%s</text>`+"\n", x, y0+ph+16, tickLabel(v))
	}
	fmt.Fprintf(w, `<text x="%g" y="%g" text-anchor="middle">seconds since start</text>`+"\n", x0+pw/2, y0+ph+34)

	for _, l := range lines {
		var path strings.Builder
		pen := false
		for i, y := range l.ys {
			if logY && y <= 0 {
				pen = false
				continue
			}
			cmd := "L"
			if !pen {
				cmd = "M"
			}
			fmt.Fprintf(&path, "%s%.1f %.1f ", cmd, xmap(l.xs[i]), ymap(y))
			pen = true
		}
		if path.Len() == 0 {
			continue
		}
		dash := ""
		if l.dashed {
			dash = ` stroke-dasharray="5 3"`
		}
		fmt.Fprintf(w, `<path d="%s" fill="none" stroke="%s" stroke-width="1.5"%s/>`+"\n", strings.TrimSpace(path.String()), l.color, dash)
	}
	// The legend sits in the top-left corner, one line per series.
	for i, l := range lines {
		y := y0 + 16 + float64(i)*15
		dash := ""
		if l.dashed {
			dash = ` stroke-dasharray="5 3"`
		}
		fmt.Fprintf(w, `<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="%s" stroke-width="2"%s/>`+"\n", x0+10, y-4, x0+34, y-4, l.color, dash)
		fmt.Fprintf(w, `<text x="%g" y="%g">%s</text>`+"\n", x0+40, y, html.EscapeString(l.name))
	}
}

// niceScale returns an axis top at or above v and a tick step, both 1, 2
// or 5 times a power of ten, giving four to ten ticks.
func niceScale(v float64) (top, step float64) {
	if v <= 0 {
		return 1, 0.2
	}
	raw := v / 5
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	switch f := raw / mag; {
	case f <= 1:
		step = mag
	case f <= 2:
		step = 2 * mag
	case f <= 5:
		step = 5 * mag
	default:
		step = 10 * mag
	}
	return math.Ceil(v/step) * step, step
}

func tickLabel(v float64) string {
	switch {
	case v >= 1e6 && math.Mod(v, 1e6) == 0:
		return strconv.FormatFloat(v/1e6, 'f', -1, 64) + "M"
	case v >= 1e3 && math.Mod(v, 1e3) == 0:
		return strconv.FormatFloat(v/1e3, 'f', -1, 64) + "k"
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}
