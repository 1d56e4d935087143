package gateway

import (
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/wallet/wallet/internal/transfer"
)

// ids reads the ids of a list reply's data.
func ids(r reply) []string {
	var out []string
	data, _ := r.body["data"].([]any)
	for _, d := range data {
		out = append(out, d.(map[string]any)["id"].(string))
	}
	return out
}

// collect follows a list's pages from path and returns every id, in order.
func (h *harness) collect(path string) []string {
	h.t.Helper()
	var out []string
	next := path
	for pages := 0; ; pages++ {
		if pages > 50 {
			h.t.Fatalf("%s: the pages do not end", path)
		}
		r := h.do("GET", next, "")
		expect(h.t, r, 200, "")
		out = append(out, ids(r)...)
		cursor, ok := r.body["next_cursor"].(string)
		if !ok {
			return out
		}
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		next = path + sep + "cursor=" + url.QueryEscape(cursor)
	}
}

func TestSearchTransfersOverHTTP(t *testing.T) {
	t.Parallel()
	h := setup(t, Config{})
	a, b := h.account("USD", "100"), h.account("USD", "")
	t1 := transfer.Request{ID: uuid.New(), Kind: transfer.KindTransfer, From: a, To: b, Amount: decimal.RequireFromString("10"), Currency: "USD"}
	big := transfer.Request{ID: uuid.New(), Kind: transfer.KindTransfer, From: a, To: b, Amount: decimal.RequireFromString("1000"), Currency: "USD"}
	out := h.apply(t1, big)
	w1 := transfer.Request{ID: uuid.New(), Kind: transfer.KindWithdrawal, From: b, Amount: decimal.RequireFromString("1"), Currency: "USD"}
	later := h.apply(w1)
	if _, err := h.store.Pool().Exec(testCtx(t), `UPDATE transfers SET reference = 'order-1', metadata = '{"order_id":"1","shop":"x"}'
		WHERE id = $1`, t1.ID); err != nil {
		t.Fatal(err)
	}

	byRef := h.do("GET", "/v1/transfers?reference=order-1", "")
	expect(t, byRef, 200, "")
	if got := ids(byRef); !slices.Equal(got, []string{t1.ID.String()}) {
		t.Fatalf("by reference: %s", byRef.raw)
	}
	row := byRef.body["data"].([]any)[0].(map[string]any)
	if row["status"] != "applied" || row["amount"] != "10.00" || row["from_account_id"] != a.String() || row["processed_at"] == nil {
		t.Errorf("by reference: %v", row)
	}

	// The deposit funding a, t1 and big, then w1: newest first.
	all := h.collect("/v1/transfers")
	if len(all) != 4 || all[0] != w1.ID.String() {
		t.Fatalf("all: %v", all)
	}
	if got := h.collect("/v1/transfers?limit=1"); !slices.Equal(got, all) {
		t.Errorf("paged by 1: %v, want %v", got, all)
	}
	processed := out[0].Transfer.ProcessedAt.Format(time.RFC3339Nano)
	for _, tc := range []struct {
		query string
		want  []uuid.UUID
	}{
		{"account_id=" + b.String() + "&kind=withdrawal", []uuid.UUID{w1.ID}},
		{"account_id=" + b.String() + "&status=rejected", []uuid.UUID{big.ID}},
		{"metadata.shop=x", []uuid.UUID{t1.ID}},
		{"metadata.shop=x&metadata.order_id=1", []uuid.UUID{t1.ID}},
		{"metadata.shop=x&metadata.shop=y", nil},
		{"metadata.shop=y", nil},
		{"created_after=" + url.QueryEscape(processed), []uuid.UUID{w1.ID}},
		{"created_after=" + processed, []uuid.UUID{w1.ID}}, // an unescaped '+' of an offset arrives as a space
		{"created_before=" + url.QueryEscape(later[0].Transfer.ProcessedAt.Add(-time.Microsecond).Format(time.RFC3339Nano)) + "&kind=transfer&status=applied", []uuid.UUID{t1.ID}},
		{"reference=unknown", nil},
	} {
		var want []string
		for _, id := range tc.want {
			want = append(want, id.String())
		}
		if got := h.collect("/v1/transfers?" + tc.query); !slices.Equal(got, want) {
			t.Errorf("%s: %v, want %v", tc.query, got, want)
		}
	}

	for _, bad := range []struct {
		query string
		code  transfer.Code
	}{
		{"limit=501", CodeInvalidField},
		{"limit=0", CodeInvalidField},
		{"account_id=x", CodeInvalidField},
		{"kind=payout", CodeInvalidField},
		{"status=pending", CodeInvalidField},
		{"created_after=yesterday", CodeInvalidField},
		{"created_before=2026-01-01", CodeInvalidField},
		{"acount_id=" + a.String(), CodeInvalidField},
		{"reference=" + strings.Repeat("r", 129), CodeInvalidField},
		{"metadata.Shop=x", transfer.CodeInvalidMetadata},
		{"metadata.=x", transfer.CodeInvalidMetadata},
		{"metadata.k=" + strings.Repeat("v", 513), transfer.CodeInvalidMetadata},
		{"cursor=nonsense", CodeBadCursor},
	} {
		expect(t, h.do("GET", "/v1/transfers?"+bad.query, ""), 400, bad.code)
	}
}

func TestBalanceAtOverHTTP(t *testing.T) {
	t.Parallel()
	h := setup(t, Config{})
	a := h.account("USD", "100")
	b := h.account("USD", "")
	h.apply(transfer.Request{ID: uuid.New(), Kind: transfer.KindTransfer, From: a, To: b, Amount: decimal.RequireFromString("30"), Currency: "USD"})
	entries := h.do("GET", "/v1/accounts/"+a.String()+"/entries", "")
	expect(t, entries, 200, "")
	data := entries.body["data"].([]any)
	if len(data) != 2 {
		t.Fatalf("entries: %s", entries.raw)
	}
	second := data[0].(map[string]any)["created_at"].(string)
	first := data[1].(map[string]any)["created_at"].(string)
	firstAt, err := time.Parse(time.RFC3339Nano, first)
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		at, balance string
		version     float64
	}{
		{firstAt.Add(-time.Microsecond).Format(time.RFC3339Nano), "0.00", 0},
		{first, "100.00", 1},
		{second, "70.00", 2},
		{"", "70.00", 2},
	} {
		path := "/v1/accounts/" + a.String() + "/balance"
		if tc.at != "" {
			path += "?at=" + url.QueryEscape(tc.at)
		}
		r := h.do("GET", path, "")
		expect(t, r, 200, "")
		if r.str("balance") != tc.balance || r.str("available") != tc.balance || r.body["version"] != tc.version ||
			r.str("account_id") != a.String() || r.str("currency") != "USD" || r.str("at") == "" {
			t.Errorf("at %q: %s", tc.at, r.raw)
		}
		if tc.at != "" {
			want, _ := time.Parse(time.RFC3339Nano, tc.at)
			if got, err := time.Parse(time.RFC3339Nano, r.str("at")); err != nil || !got.Equal(want) {
				t.Errorf("at %q answered for %q", tc.at, r.str("at"))
			}
		}
	}
	expect(t, h.do("GET", "/v1/accounts/"+uuid.NewString()+"/balance", ""), 404, CodeNotFound)
	expect(t, h.do("GET", "/v1/accounts/"+uuid.NewString()+"/balance?at="+url.QueryEscape(first), ""), 404, CodeNotFound)
	expect(t, h.do("GET", "/v1/accounts/"+a.String()+"/balance?at=soon", ""), 400, CodeInvalidField)
	expect(t, h.do("GET", "/v1/accounts/x/balance", ""), 400, CodeInvalidField)

	window := h.do("GET", "/v1/accounts/"+a.String()+"/entries?created_after="+url.QueryEscape(first), "")
	expect(t, window, 200, "")
	if d := window.body["data"].([]any); len(d) != 1 || d[0].(map[string]any)["created_at"] != second {
		t.Errorf("entries after the first: %s", window.raw)
	}
	window = h.do("GET", "/v1/accounts/"+a.String()+"/entries?created_before="+url.QueryEscape(first), "")
	if d := window.body["data"].([]any); len(d) != 1 || d[0].(map[string]any)["created_at"] != first {
		t.Errorf("entries up to the first: %s", window.raw)
	}
	expect(t, h.do("GET", "/v1/accounts/"+a.String()+"/entries?created_before=x", ""), 400, CodeInvalidField)
}

func TestAccountMetadataOverHTTP(t *testing.T) {
	t.Parallel()
	h := setup(t, Config{})
	id := uuid.New()
	r := h.do("POST", "/v1/accounts", `{"id":"`+id.String()+`","currency":"USD","metadata":{"team":"ops","cost-center":"7"}}`)
	expect(t, r, 201, "")
	if m, _ := r.body["metadata"].(map[string]any); m["team"] != "ops" || m["cost-center"] != "7" {
		t.Fatalf("created: %s", r.raw)
	}
	plain := h.do("POST", "/v1/accounts", `{"currency":"USD"}`)
	if m, ok := plain.body["metadata"].(map[string]any); !ok || len(m) != 0 {
		t.Fatalf("an account without metadata shows {}: %s", plain.raw)
	}
	for _, bad := range []struct {
		body string
		code transfer.Code
	}{
		{`{"currency":"USD","metadata":{"Team":"x"}}`, transfer.CodeInvalidMetadata},
		{`{"currency":"USD","metadata":{"team":1}}`, transfer.CodeInvalidMetadata},
		{`{"currency":"USD","metadata":{"team":null}}`, transfer.CodeInvalidMetadata},
		{`{"currency":"USD","metadata":["x"]}`, transfer.CodeInvalidMetadata},
		{`{"currency":"USD","metadata":{"a":"1","a":"2"}}`, transfer.CodeInvalidMetadata},
		{`{"currency":"USD","metadata":{}, "metadata":{}}`, CodeDuplicateField},
		{`{"currency":"USD","extra":"x"}`, CodeUnknownField},
		{`{"currency":1}`, CodeInvalidField},
		{`{"currency":"USD"} x`, CodeMalformedJSON},
		{`{"currency":"USD"`, CodeMalformedJSON},
	} {
		expect(t, h.do("POST", "/v1/accounts", bad.body), 400, bad.code)
	}

	list := h.do("GET", "/v1/accounts?metadata.team=ops", "")
	expect(t, list, 200, "")
	if got := ids(list); !slices.Equal(got, []string{id.String()}) {
		t.Errorf("accounts by metadata: %s", list.raw)
	}
	expect(t, h.do("GET", "/v1/accounts?metadata.TEAM=ops", ""), 400, transfer.CodeInvalidMetadata)

	path := "/v1/accounts/" + id.String()
	p := h.do("PATCH", path, `{"metadata":{"team":null,"region":"eu"}}`, "Content-Type", "application/merge-patch+json")
	expect(t, p, 200, "")
	if m, _ := p.body["metadata"].(map[string]any); len(m) != 2 || m["region"] != "eu" || m["cost-center"] != "7" {
		t.Fatalf("patched: %s", p.raw)
	}
	if got := h.do("GET", path, ""); got.body["metadata"].(map[string]any)["region"] != "eu" {
		t.Errorf("read after the patch: %s", got.raw)
	}
	expect(t, h.do("PATCH", path, `{}`), 200, "")
	bad := h.do("PATCH", path, `{"metadata":{"note":"`+strings.Repeat("x", 513)+`"}}`)
	expect(t, bad, 400, transfer.CodeInvalidMetadata)
	if bad.str("field") != "metadata" {
		t.Errorf("the problem names %q, want metadata", bad.str("field"))
	}
	expect(t, h.do("PATCH", path, `{"balance":"1"}`), 400, CodeUnknownField)
	expect(t, h.do("PATCH", "/v1/accounts/"+uuid.NewString(), `{"metadata":{"a":"b"}}`), 404, CodeNotFound)
	expect(t, h.do("PATCH", path, `{"metadata":{"a":"b"}}`, "Content-Type", "text/plain"), 415, CodeUnsupportedMediaType)
}
