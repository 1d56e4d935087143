package gateway

import (
	"encoding/base64"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/wallet/wallet/internal/natsbus"
)

// poison publishes a message the workers cannot read as a request to
// account's partition and returns the sequence of its dead letter, once a
// worker has stored it (startWorker first).
func (h *harness) poison(account uuid.UUID) uint64 {
	h.t.Helper()
	ctx := testCtx(h.t)
	if _, err := h.js.Publish(ctx, natsbus.RequestSubject(account, uuid.New()), []byte(`{"v":1,"kind":`)); err != nil {
		h.t.Fatal(err)
	}
	dl, err := h.js.Stream(ctx, natsbus.DeadLetterStream)
	if err != nil {
		h.t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		info, err := dl.Info(ctx)
		if err != nil {
			h.t.Fatal(err)
		}
		if info.State.Msgs > 0 {
			return info.State.LastSeq
		}
		if time.Now().After(deadline) {
			h.t.Fatal("the poison message was not dead-lettered")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestConsoleFiles: the console's files are served without a token, with
// their media types and a strict CSP; nothing outside them is.
func TestConsoleFiles(t *testing.T) {
	t.Parallel()
	g, err := New(Config{Tokens: []Token{{Hash: tokenHash("secret"), Scope: ScopeRead}}}, nil, nil, zap.NewNop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, g: g}
	for path, ctype := range map[string]string{
		"/console/":            "text/html; charset=utf-8",
		"/console/console.js":  "text/javascript; charset=utf-8",
		"/console/console.css": "text/css; charset=utf-8",
		"/console/icon.svg":    "image/svg+xml",
	} {
		r := h.do("GET", path, "")
		if r.status != 200 || r.header.Get("Content-Type") != ctype {
			t.Errorf("GET %s: %d %q, want 200 %q", path, r.status, r.header.Get("Content-Type"), ctype)
		}
		if csp := r.header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("GET %s: CSP %q", path, csp)
		}
		if r.header.Get("X-Content-Type-Options") != "nosniff" || r.header.Get("X-Trace-Id") == "" {
			t.Errorf("GET %s: headers %v", path, r.header)
		}
	}
	page := h.do("GET", "/console/", "")
	for _, want := range []string{`src="console.js"`, `href="console.css"`, "Dead letters"} {
		if !strings.Contains(string(page.raw), want) {
			t.Errorf("the page lacks %s", want)
		}
	}
	if r := h.do("GET", "/console", ""); r.status != 301 || r.header.Get("Location") != "/console/" {
		t.Errorf("GET /console: %d to %q, want 301 to /console/", r.status, r.header.Get("Location"))
	}
	for _, path := range []string{"/console/missing.js", "/console/README", "/console/..%2fconsole.go", "/console/%2e%2e", "/console/index.html%00.js"} {
		if r := h.do("GET", path, ""); r.status != 404 {
			t.Errorf("GET %s: %d, want 404", path, r.status)
		}
	}
	// The data is not served without a token.
	if r := h.do("GET", "/v1/ops/overview", ""); r.status != 401 {
		t.Errorf("GET /v1/ops/overview without a token: %d, want 401", r.status)
	}
}

// TestOpsWithoutNATS: a gateway whose bus cannot read the pipeline
// answers the views with 503, not a panic.
func TestOpsWithoutNATS(t *testing.T) {
	t.Parallel()
	g, err := New(Config{}, nil, nil, zap.NewNop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, g: g}
	for _, path := range []string{"/v1/ops/overview", "/v1/ops/dead-letters", "/v1/ops/dead-letters/1"} {
		if r := h.do("GET", path, ""); r.status != 503 || r.str("code") != "service_unavailable" {
			t.Errorf("GET %s: %d %s, want 503 service_unavailable", path, r.status, r.raw)
		}
	}
}

// TestOverview follows requests and a poison message through a gateway
// and a worker as the overview reports them.
func TestOverview(t *testing.T) {
	t.Parallel()
	h := setup(t, Config{})
	h.startWorker()
	a, b := h.account("USD", "100"), h.account("USD", "")

	first := h.poll("/v1/ops/overview", func(r reply) bool {
		ws, _ := r.body["workers"].([]any)
		return r.status == 200 && len(ws) == 1
	})
	accepted0 := first.body["accepted"].(float64)
	for range 3 {
		id := uuid.New()
		if r := h.do("POST", "/v1/transfers", transferJSON(id, a, b, "1", "USD"), "Prefer", "wait=20"); r.status != 201 {
			t.Fatalf("transfer: %d %s", r.status, r.raw)
		}
	}
	seq := h.poison(a)
	time.Sleep(opsSnapshotTTL) // the next reading is a new sample
	o := h.poll("/v1/ops/overview", func(r reply) bool {
		dl, _ := r.body["dead_letters"].(map[string]any)
		return r.status == 200 && dl["total"] == float64(1) && r.body["pending"] == float64(0)
	})
	if got := o.body["accepted"].(float64) - accepted0; got != 4 {
		t.Errorf("accepted went up by %v, want the 3 transfers and the poison message", got)
	}
	rates, _ := o.body["rates"].([]any)
	var accepted float64
	for _, r := range rates {
		accepted += r.(map[string]any)["accepted"].(float64)
	}
	if len(rates) == 0 || accepted < 4 {
		t.Errorf("rates %v: want samples counting the 4 new requests", rates)
	}
	workers := o.body["workers"].([]any)
	w := workers[0].(map[string]any)
	if ps, _ := w["partitions"].([]any); len(ps) != 4 {
		t.Errorf("worker %v: want all 4 partitions", w)
	}
	for _, p := range o.body["partitions"].([]any) {
		p := p.(map[string]any)
		if p["owner"] != w["id"] || p["exists"] != true || p["pending"] != float64(0) || p["oldest_pending_at"] != nil {
			t.Errorf("partition %v", p)
		}
	}
	dl := o.body["dead_letters"].(map[string]any)
	if reasons, _ := dl["by_reason"].(map[string]any); reasons["malformed_json"] != float64(1) {
		t.Errorf("dead letters %v, want one malformed_json", dl)
	}
	if o.body["oldest_pending_at"] != nil || o.body["oldest_pending_age_seconds"] != nil {
		t.Errorf("nothing is pending, yet oldest pending is %v", o.body["oldest_pending_at"])
	}

	list := h.do("GET", "/v1/ops/dead-letters", "")
	data, _ := list.body["data"].([]any)
	if list.status != 200 || len(data) != 1 || list.body["next_cursor"] != nil {
		t.Fatalf("dead letters: %d %s", list.status, list.raw)
	}
	if d := data[0].(map[string]any); d["seq"] != float64(seq) || d["reason"] != "malformed_json" ||
		!strings.HasPrefix(d["original_subject"].(string), natsbus.RequestsPrefix) || d["body"] != nil {
		t.Errorf("listed dead letter %v", d)
	}
	one := h.do("GET", "/v1/ops/dead-letters/"+strconv.FormatUint(seq, 10), "")
	poison := `{"v":1,"kind":`
	if one.status != 200 || one.body["body"] != poison || one.body["body_base64"] != base64.StdEncoding.EncodeToString([]byte(poison)) ||
		one.body["truncated"] != false || one.body["original_size"] != float64(len(poison)) {
		t.Errorf("dead letter %d: %d %s", seq, one.status, one.raw)
	}
}

// TestRates: per-second rates between samples; an interval over which a
// counter went down (a recreated stream) is left out.
func TestRates(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	got := rates([]opsSample{
		{at: t0, accepted: 100, decided: 90},
		{at: t0.Add(2 * time.Second), accepted: 110, decided: 94},
		{at: t0.Add(4 * time.Second), accepted: 3, decided: 1}, // recreated
		{at: t0.Add(8 * time.Second), accepted: 7, decided: 9},
	})
	if len(got) != 2 {
		t.Fatalf("%d rates, want 2: %+v", len(got), got)
	}
	if got[0].Accepted != 5 || got[0].Decided != 2 || got[0].Seconds != 2 || got[0].Requests != 10 {
		t.Errorf("first rate %+v, want 5/s and 2/s over 2s", got[0])
	}
	if got[1].Accepted != 1 || got[1].Decided != 2 || !got[1].At.Equal(t0.Add(8*time.Second)) {
		t.Errorf("second rate %+v, want 1/s and 2/s ending at 8s", got[1])
	}
	if r := rates(nil); r == nil || len(r) != 0 {
		t.Errorf("no samples: %v, want an empty list", r)
	}
}
