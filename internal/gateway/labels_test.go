package gateway

import (
	"encoding/json"
	"maps"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/wallet/wallet/internal/transfer"
)

// labelsOf reads a view's metadata and reference.
func labelsOf(t *testing.T, r reply) (map[string]string, string) {
	t.Helper()
	var v struct {
		Metadata  map[string]string `json:"metadata"`
		Reference string            `json:"reference"`
	}
	raw := r.raw
	if tr, ok := r.body["transfer"]; ok {
		raw, _ = json.Marshal(tr)
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("%s: %v", r.raw, err)
	}
	return v.Metadata, v.Reference
}

// TestLabelsEndToEnd: every v1 write takes metadata and a reference, every
// view returns them as sent, a used reference is rejected under another
// id, other labels under the same id conflict, and the 2020 API's views
// keep their shape.
func TestLabelsEndToEnd(t *testing.T) {
	t.Parallel()
	h := setup(t, Config{})
	h.startWorker()
	a, b := h.account("USD", "100"), h.account("USD", "")
	meta := map[string]string{"order_id": "A-1", "provider.charge": "ch_1", "note": "café \"x\" <b>&", "empty": ""}
	labels := func(ref string) string {
		m, _ := json.Marshal(meta)
		return `,"metadata":` + string(m) + `,"reference":"` + ref + `"`
	}
	add := func(body, extra string) string { return strings.TrimSuffix(body, "}") + extra + "}" }
	wait := []string{"Prefer", "wait=20"}
	check := func(r reply, ref string) {
		t.Helper()
		m, got := labelsOf(t, r)
		if !maps.Equal(m, meta) || got != ref {
			t.Fatalf("labels %v %q, want %v %q: %s", m, got, meta, ref, r.raw)
		}
	}

	tr, dep, wd, hold, post, hold2, void, rev := uuid.New(), uuid.New(), uuid.New(), uuid.New(), uuid.New(), uuid.New(), uuid.New(), uuid.New()
	steps := []struct {
		path, body, ref string
		status          int
	}{
		{"/v1/transfers", add(transferJSON(tr, a, b, "10", "USD"), labels("tr-1")), "tr-1", 201},
		{"/v1/deposits", `{"id":"` + dep.String() + `","account_id":"` + b.String() + `","amount":"5","currency":"USD"` + labels("dep-1") + `}`, "dep-1", 201},
		{"/v1/withdrawals", `{"id":"` + wd.String() + `","account_id":"` + b.String() + `","amount":"1","currency":"USD"` + labels("wd-1") + `}`, "wd-1", 201},
		{"/v1/holds", add(holdJSON(hold, a, b, "4", ""), labels("hold-1")), "hold-1", 201},
		{"/v1/holds/" + hold.String() + "/post", idJSON(post, `,"amount":"3"`+labels("post-1")), "post-1", 201},
		{"/v1/holds", add(holdJSON(hold2, a, b, "1", ""), labels("hold-2")), "hold-2", 201},
		{"/v1/holds/" + hold2.String() + "/void", idJSON(void, labels("void-1")), "void-1", 201},
		{"/v1/transfers/" + tr.String() + "/reversals", idJSON(rev, `,"amount":"2"`+labels("rev-1")), "rev-1", 201},
	}
	for _, s := range steps {
		r := h.do("POST", s.path, s.body, wait...)
		if r.status != s.status || r.str("status") != "applied" {
			t.Fatalf("%s: %d %s", s.path, r.status, r.raw)
		}
		check(r, s.ref)
		// The same body again replays (200) with the same labels.
		r = h.do("POST", s.path, s.body)
		if r.status != 200 {
			t.Fatalf("%s again: %d %s", s.path, r.status, r.raw)
		}
		check(r, s.ref)
	}
	for _, id := range []uuid.UUID{tr, dep, wd, hold, post, hold2, void, rev} {
		r := h.do("GET", "/v1/transfers/"+id.String(), "")
		if r.status != 200 {
			t.Fatalf("get %s: %d", id, r.status)
		}
		m, _ := labelsOf(t, r)
		if !maps.Equal(m, meta) {
			t.Fatalf("get %s: %s", id, r.raw)
		}
	}
	check(h.do("GET", "/v1/holds/"+hold.String(), ""), "hold-1")
	list := h.do("GET", "/v1/accounts/"+a.String()+"/holds", "")
	if !strings.Contains(string(list.raw), `"reference":"hold-1"`) || !strings.Contains(string(list.raw), `"order_id":"A-1"`) {
		t.Fatalf("hold list: %s", list.raw)
	}
	if !strings.Contains(string(h.do("GET", "/v1/transfers/"+tr.String()+"/reversals", "").raw), `"reference":"rev-1"`) {
		t.Fatal("reversal list lacks the reference")
	}

	// Same id, other labels: a conflict showing the stored request.
	r := h.do("POST", "/v1/transfers", add(transferJSON(tr, a, b, "10", "USD"), labels("tr-other")))
	expect(t, r, 409, transfer.CodeTransferIDConflict)
	check(r, "tr-1")
	r = h.do("POST", "/v1/transfers", transferJSON(tr, a, b, "10", "USD"))
	expect(t, r, 409, transfer.CodeTransferIDConflict)

	// A used reference under a new id, of any kind: rejected, final, and
	// the reference stays with its owner.
	again := uuid.New()
	body := `{"id":"` + again.String() + `","account_id":"` + b.String() + `","amount":"5","currency":"USD","reference":"tr-1"}`
	r = h.do("POST", "/v1/deposits", body, wait...)
	expect(t, r, 422, transfer.CodeReferenceAlreadyUsed)
	if r.body["field"] != "reference" {
		t.Fatalf("field: %s", r.raw)
	}
	expect(t, h.do("POST", "/v1/deposits", body), 422, transfer.CodeReferenceAlreadyUsed)
	if _, ref := labelsOf(t, h.do("GET", "/v1/transfers/"+again.String(), "")); ref != "" {
		t.Fatalf("the rejection took the reference %q", ref)
	}

	// Broken labels are refused whole, naming the field; nothing is stored.
	before := h.transfers()
	for _, c := range []struct{ extra, field string }{
		{`,"metadata":{"Order":"x"}`, "metadata"},
		{`,"metadata":{"a":1}`, "metadata"},
		{`,"metadata":"a=b"`, "metadata"},
		{`,"metadata":{"v":"` + strings.Repeat("x", 513) + `"}`, "metadata"},
		{`,"reference":""`, "reference"},
		{`,"reference":"` + strings.Repeat("r", 129) + `"`, "reference"},
		{`,"reference":"a\u0000b"`, "reference"},
		{`,"reference":7`, "reference"},
	} {
		r := h.do("POST", "/v1/transfers", add(transferJSON(uuid.New(), a, b, "1", "USD"), c.extra))
		code := transfer.CodeInvalidMetadata
		if c.field == "reference" {
			code = transfer.CodeInvalidReference
		}
		expect(t, r, 400, code)
		if r.body["field"] != c.field {
			t.Fatalf("%s: field %v", c.extra, r.body["field"])
		}
	}
	if h.transfers() != before {
		t.Fatal("a refused request was stored")
	}

	// The 2020 API keeps its shape: no labels in its views, and its body
	// takes none.
	legacy := h.do("GET", "/accounts/"+a.String()+"/transfers/", "")
	if legacy.status != 200 || !strings.Contains(string(legacy.raw), tr.String()) ||
		strings.Contains(string(legacy.raw), "metadata") || strings.Contains(string(legacy.raw), "reference") {
		t.Fatalf("2020 API view: %s", legacy.raw)
	}
	r = h.do("POST", "/transfers/", `{"id":"`+uuid.NewString()+`","sender_account_id":"`+a.String()+
		`","receiver_account_id":"`+b.String()+`","amount":"1","currency_code":"USD","reference":"x"}`)
	if r.status != 400 {
		t.Fatalf("2020 API took a reference: %d %s", r.status, r.raw)
	}
}
