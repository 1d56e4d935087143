package gateway

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
	"github.com/google/uuid"
)

// The console's files are validated as text, like /metrics.
func init() {
	for _, ct := range []string{"text/html", "text/css", "text/javascript", "image/svg+xml"} {
		openapi3filter.RegisterBodyDecoder(ct, openapi3filter.PlainBodyDecoder)
	}
}

// TestResponsesMatchOpenAPI sends requests to every route, successes and
// failures, through a gateway with tokens and a worker, and validates each
// real response (status, headers, body) against openapi.json: a status the
// document does not list, a missing required header (X-Trace-Id on every
// response, WWW-Authenticate on a 401) or a body its schema rejects fails
// the test.
func TestResponsesMatchOpenAPI(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	doc, err := openapi3.NewLoader().LoadFromData(openAPI)
	if err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if err := doc.Validate(ctx); err != nil {
		t.Fatalf("openapi.json is not a valid OpenAPI document: %v", err)
	}
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}

	const reader, writer = "reader-secret", "writer-secret"
	h := setup(t, Config{Tokens: []Token{
		{Hash: tokenHash(reader), Scope: ScopeRead},
		{Hash: tokenHash(writer), Scope: ScopeWrite},
	}})
	h.startWorker()
	rd, wr := "Bearer "+reader, "Bearer "+writer
	a, b := h.account("USD", "100"), h.account("USD", "")
	deadLetter := h.poison(a)
	eur := h.account("EUR", "")
	tr := uuid.New()
	hold, post := uuid.New(), uuid.New()
	labelled, labelledHold := uuid.New(), uuid.New()

	type call struct {
		method, path, body string
		headers            []string // name, value pairs
		status             int
	}
	calls := []call{
		{"GET", "/healthz", "", nil, 200},
		{"GET", "/readyz", "", nil, 200},
		{"GET", "/metrics", "", []string{"Authorization", rd}, 200},
		{"GET", "/metrics", "", nil, 401},
		{"GET", "/openapi.json", "", []string{"Authorization", rd}, 200},
		{"GET", "/openapi.json", "", nil, 401},

		{"POST", "/v1/accounts", `{"currency":"USD"}`, []string{"Authorization", wr}, 201},
		{"POST", "/v1/accounts", `{"currency":"USD"}`, []string{"Authorization", rd}, 403},
		{"POST", "/v1/accounts", `{"currency":"XYZ"}`, []string{"Authorization", wr}, 422},
		{"POST", "/v1/accounts", `{"currency":`, []string{"Authorization", wr}, 400},
		{"POST", "/v1/accounts", `{"currency":"USD"}`, []string{"Authorization", wr, "Content-Type", "text/plain"}, 415},
		{"GET", "/v1/accounts", "", []string{"Authorization", rd}, 200},
		{"GET", "/v1/accounts?limit=1", "", []string{"Authorization", rd}, 200},
		{"GET", "/v1/accounts?limit=0", "", []string{"Authorization", rd}, 400},
		{"GET", "/v1/accounts", "", nil, 401},
		{"GET", "/v1/accounts/" + a.String(), "", []string{"Authorization", rd}, 200},
		{"GET", "/v1/accounts/" + uuid.NewString(), "", []string{"Authorization", rd}, 404},
		{"GET", "/v1/accounts/not-a-uuid", "", []string{"Authorization", rd}, 400},
		{"GET", "/v1/accounts/" + a.String() + "/entries", "", []string{"Authorization", rd}, 200},
		{"GET", "/v1/accounts/" + uuid.NewString() + "/entries", "", []string{"Authorization", rd}, 404},
		{"GET", "/v1/accounts/" + a.String() + "/entries?created_after=2026-01-01T00:00:00Z&created_before=2099-01-01T00:00:00Z", "", []string{"Authorization", rd}, 200},
		{"GET", "/v1/accounts/" + a.String() + "/entries?created_after=never", "", []string{"Authorization", rd}, 400},
		{"GET", "/v1/accounts?metadata.team=payments", "", []string{"Authorization", rd}, 200},
		{"GET", "/v1/accounts?metadata.Team=payments", "", []string{"Authorization", rd}, 400},
		{"POST", "/v1/accounts", `{"currency":"USD","metadata":{"team":"payments"}}`, []string{"Authorization", wr}, 201},
		{"POST", "/v1/accounts", `{"currency":"USD","metadata":{"team":1}}`, []string{"Authorization", wr}, 400},
		{"PATCH", "/v1/accounts/" + a.String(), `{"metadata":{"team":"payments","old":null}}`, []string{"Authorization", wr, "Content-Type", "application/merge-patch+json"}, 200},
		{"PATCH", "/v1/accounts/" + a.String(), `{"metadata":{"team":"` + strings.Repeat("x", 513) + `"}}`, []string{"Authorization", wr}, 400},
		{"PATCH", "/v1/accounts/" + uuid.NewString(), `{"metadata":{}}`, []string{"Authorization", wr}, 404},
		{"PATCH", "/v1/accounts/" + a.String(), `{"metadata":{}}`, []string{"Authorization", rd}, 403},
		{"PATCH", "/v1/accounts/" + a.String(), `{"metadata":{}}`, nil, 401},
		{"PATCH", "/v1/accounts/" + a.String(), `{"metadata":{}}`, []string{"Authorization", wr, "Content-Type", "text/plain"}, 415},
		{"GET", "/v1/accounts/" + a.String() + "/balance", "", []string{"Authorization", rd}, 200},
		{"GET", "/v1/accounts/" + a.String() + "/balance?at=2026-01-01T00:00:00Z", "", []string{"Authorization", rd}, 200},
		{"GET", "/v1/accounts/" + a.String() + "/balance?at=today", "", []string{"Authorization", rd}, 400},
		{"GET", "/v1/accounts/" + uuid.NewString() + "/balance", "", []string{"Authorization", rd}, 404},
		{"GET", "/v1/accounts/" + a.String() + "/balance", "", nil, 401},

		// Decided while the client waits (201), then the same id again
		// (200), then accepted without waiting (202).
		{"POST", "/v1/transfers", transferJSON(tr, a, b, "1.50", "USD"), []string{"Authorization", wr, "Prefer", "wait=20"}, 201},
		{"POST", "/v1/transfers", transferJSON(tr, a, b, "1.50", "USD"), []string{"Authorization", wr, "Prefer", "wait=20"}, 200},
		{"POST", "/v1/transfers", transferJSON(uuid.New(), a, b, "1", "USD"), []string{"Authorization", wr}, 202},
		{"POST", "/v1/transfers", transferJSON(tr, a, b, "2", "USD"), []string{"Authorization", wr}, 409},
		{"POST", "/v1/transfers", transferJSON(uuid.New(), a, eur, "1", "USD"), []string{"Authorization", wr, "Prefer", "wait=20"}, 422},
		{"POST", "/v1/transfers", transferJSON(uuid.New(), b, a, "1000", "USD"), []string{"Authorization", wr, "Prefer", "wait=20"}, 422},
		{"POST", "/v1/transfers", transferJSON(uuid.New(), a, a, "1", "USD"), []string{"Authorization", wr}, 422},
		{"POST", "/v1/transfers", `{"id":1}`, []string{"Authorization", wr}, 400},
		{"POST", "/v1/transfers", `{"pad":"` + strings.Repeat("x", 70<<10) + `"}`, []string{"Authorization", wr}, 413},
		{"POST", "/v1/transfers", transferJSON(uuid.New(), a, b, "1", "USD"), nil, 401},
		{"POST", "/v1/deposits", `{"id":"` + uuid.NewString() + `","account_id":"` + b.String() + `","amount":"5","currency":"USD"}`, []string{"Authorization", wr, "Prefer", "wait=20"}, 201},
		{"POST", "/v1/deposits", `{"id":"` + uuid.NewString() + `","account_id":"` + b.String() + `","amount":"-5","currency":"USD"}`, []string{"Authorization", wr}, 422},
		{"POST", "/v1/withdrawals", `{"id":"` + uuid.NewString() + `","account_id":"` + b.String() + `","amount":"1","currency":"USD"}`, []string{"Authorization", wr}, 202},
		{"POST", "/v1/withdrawals", `{"id":"` + uuid.NewString() + `","account_id":"` + b.String() + `"}`, []string{"Authorization", wr}, 400},
		{"GET", "/v1/transfers/" + tr.String(), "", []string{"Authorization", rd}, 200},
		{"GET", "/v1/transfers/" + uuid.NewString(), "", []string{"Authorization", rd}, 404},
		{"GET", "/v1/transfers/x", "", []string{"Authorization", rd}, 400},
		{"GET", "/v1/transfers", "", []string{"Authorization", rd}, 200},
		{"GET", "/v1/transfers?account_id=" + a.String() + "&kind=transfer&status=applied&limit=2", "", []string{"Authorization", rd}, 200},
		{"GET", "/v1/transfers?reference=order-1&metadata.order_id=1", "", []string{"Authorization", rd}, 200},
		{"GET", "/v1/transfers?kind=payout", "", []string{"Authorization", rd}, 400},
		{"GET", "/v1/transfers", "", nil, 401},
		{"GET", "/v1/currencies", "", []string{"Authorization", rd}, 200},
		{"GET", "/v1/currencies", "", []string{"Authorization", "Bearer wrong"}, 401},

		// Metadata and references: stored, shown, refused when broken.
		{"POST", "/v1/transfers", withLabels(transferJSON(labelled, a, b, "0.25", "USD"), "ref-"+labelled.String()), []string{"Authorization", wr, "Prefer", "wait=20"}, 201},
		{"POST", "/v1/transfers", withLabels(transferJSON(labelled, a, b, "0.25", "USD"), "ref-"+labelled.String()), []string{"Authorization", wr}, 200},
		{"POST", "/v1/transfers", withLabels(transferJSON(uuid.New(), a, b, "0.25", "USD"), "ref-"+labelled.String()), []string{"Authorization", wr, "Prefer", "wait=20"}, 422},
		{"POST", "/v1/transfers", withLabels(transferJSON(labelled, a, b, "0.25", "USD"), "other"), []string{"Authorization", wr}, 409},
		{"POST", "/v1/transfers", strings.TrimSuffix(transferJSON(uuid.New(), a, b, "1", "USD"), "}") + `,"metadata":{"Bad Key":"x"}}`, []string{"Authorization", wr}, 400},
		{"POST", "/v1/transfers", strings.TrimSuffix(transferJSON(uuid.New(), a, b, "1", "USD"), "}") + `,"reference":""}`, []string{"Authorization", wr}, 400},
		{"GET", "/v1/transfers/" + labelled.String(), "", []string{"Authorization", rd}, 200},
		{"POST", "/v1/holds", withLabels(holdJSON(labelledHold, a, b, "0.5", ""), "hold-"+labelledHold.String()), []string{"Authorization", wr, "Prefer", "wait=20"}, 201},
		{"GET", "/v1/holds/" + labelledHold.String(), "", []string{"Authorization", rd}, 200},

		// The console and its views.
		{"GET", "/v1/ops/overview", "", []string{"Authorization", rd}, 200},
		{"GET", "/v1/ops/overview", "", nil, 401},
		{"GET", "/v1/ops/dead-letters", "", []string{"Authorization", rd}, 200},
		{"GET", "/v1/ops/dead-letters?limit=1&cursor=" + fmt.Sprint(deadLetter+1), "", []string{"Authorization", rd}, 200},
		{"GET", "/v1/ops/dead-letters?cursor=x", "", []string{"Authorization", rd}, 400},
		{"GET", "/v1/ops/dead-letters", "", nil, 401},
		{"GET", "/v1/ops/dead-letters/" + fmt.Sprint(deadLetter), "", []string{"Authorization", rd}, 200},
		{"GET", "/v1/ops/dead-letters/999999", "", []string{"Authorization", rd}, 404},
		{"GET", "/v1/ops/dead-letters/0", "", []string{"Authorization", rd}, 400},
		{"GET", "/console/", "", nil, 200},
		{"GET", "/console/console.js", "", nil, 200},
		{"GET", "/console/console.css", "", nil, 200},
		{"GET", "/console/icon.svg", "", nil, 200},
		{"GET", "/console/missing.js", "", nil, 404},

		// Holds, posts, voids and reversals.
		{"POST", "/v1/holds", holdJSON(hold, a, b, "2", `,"timeout_seconds":600`), []string{"Authorization", wr, "Prefer", "wait=20"}, 201},
		{"POST", "/v1/holds", holdJSON(hold, a, b, "2", `,"timeout_seconds":600`), []string{"Authorization", wr}, 200},
		{"POST", "/v1/holds", holdJSON(hold, a, b, "3", ""), []string{"Authorization", wr}, 409},
		{"POST", "/v1/holds", holdJSON(uuid.New(), a, b, "1", ""), []string{"Authorization", wr}, 202},
		{"POST", "/v1/holds", holdJSON(uuid.New(), a, b, "1", `,"timeout_seconds":-1`), []string{"Authorization", wr}, 422},
		{"POST", "/v1/holds", `{"id":1}`, []string{"Authorization", wr}, 400},
		{"POST", "/v1/holds", holdJSON(uuid.New(), a, b, "1", ""), nil, 401},
		{"GET", "/v1/holds/" + hold.String(), "", []string{"Authorization", rd}, 200},
		{"GET", "/v1/holds/" + uuid.NewString(), "", []string{"Authorization", rd}, 404},
		{"GET", "/v1/holds/x", "", []string{"Authorization", rd}, 400},
		{"POST", "/v1/holds/" + hold.String() + "/post", idJSON(post, `,"amount":"1.5"`), []string{"Authorization", wr, "Prefer", "wait=20"}, 201},
		{"POST", "/v1/holds/" + hold.String() + "/post", idJSON(post, `,"amount":"1.5"`), []string{"Authorization", wr}, 200},
		{"POST", "/v1/holds/" + hold.String() + "/post", idJSON(uuid.New(), `,"amount":"x"`), []string{"Authorization", wr}, 400},
		{"POST", "/v1/holds/" + hold.String() + "/void", idJSON(uuid.New(), ""), []string{"Authorization", wr, "Prefer", "wait=20"}, 422},
		{"POST", "/v1/holds/" + uuid.NewString() + "/void", idJSON(uuid.New(), ""), []string{"Authorization", wr}, 422},
		{"POST", "/v1/holds/x/void", idJSON(uuid.New(), ""), []string{"Authorization", wr}, 400},
		{"POST", "/v1/holds/" + hold.String() + "/void", idJSON(uuid.New(), ""), []string{"Authorization", rd}, 403},
		{"GET", "/v1/transfers/" + post.String(), "", []string{"Authorization", rd}, 200},
		{"GET", "/v1/accounts/" + a.String() + "/holds?state=held", "", []string{"Authorization", rd}, 200},
		{"GET", "/v1/accounts/" + a.String() + "/holds?state=nope", "", []string{"Authorization", rd}, 400},
		{"GET", "/v1/accounts/" + uuid.NewString() + "/holds", "", []string{"Authorization", rd}, 404},
		{"POST", "/v1/transfers/" + post.String() + "/reversals", idJSON(uuid.New(), `,"amount":"0.5"`), []string{"Authorization", wr, "Prefer", "wait=20"}, 201},
		{"POST", "/v1/transfers/" + post.String() + "/reversals", idJSON(uuid.New(), ""), []string{"Authorization", wr}, 202},
		{"POST", "/v1/transfers/" + uuid.NewString() + "/reversals", idJSON(uuid.New(), ""), []string{"Authorization", wr}, 422},
		{"POST", "/v1/transfers/" + post.String() + "/reversals", `{"id":"` + uuid.NewString() + `","memo":"x"}`, []string{"Authorization", wr}, 400},
		{"GET", "/v1/transfers/" + post.String() + "/reversals", "", []string{"Authorization", rd}, 200},
		{"GET", "/v1/transfers/" + uuid.NewString() + "/reversals", "", []string{"Authorization", rd}, 404},
		{"GET", "/v1/transfers/" + post.String(), "", []string{"Authorization", rd}, 200},

		// The 2020 API.
		{"POST", "/transfers/", `{"sender_account_id":"` + a.String() + `","receiver_account_id":"` + b.String() + `","amount":"1","currency_code":"USD"}`, []string{"Authorization", wr}, 200},
		{"POST", "/transfers/", `{"sender_account_id":"` + a.String() + `","receiver_account_id":"` + b.String() + `","amount":"1000000","currency_code":"USD"}`, []string{"Authorization", wr}, 200},
		{"POST", "/transfers/", `[`, []string{"Authorization", wr}, 400},
		{"POST", "/transfers/", `{}`, []string{"Authorization", rd}, 403},
		{"GET", "/accounts/", "", []string{"Authorization", rd}, 200},
		{"GET", "/accounts/" + a.String() + "/transfers/", "", []string{"Authorization", rd}, 200},
		{"GET", "/accounts/nope/transfers/", "", []string{"Authorization", rd}, 400},
	}

	// Over a real connection, as a client sees it (an oversized body is
	// refused by the server before any handler).
	base := h.listen()
	send := func(method, path, body string, headers []string) reply {
		t.Helper()
		var resp *http.Response
		var err error
		if len(body) > defaultBodyLimit {
			resp, err = sendHeadOnly(base, method, path, len(body), headers)
		} else {
			req, rerr := http.NewRequest(method, base+path, strings.NewReader(body))
			if rerr != nil {
				t.Fatal(rerr)
			}
			if body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			for i := 0; i+1 < len(headers); i += 2 {
				req.Header.Set(headers[i], headers[i+1])
			}
			resp, err = http.DefaultClient.Do(req)
		}
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		raw, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return reply{status: resp.StatusCode, header: resp.Header, raw: raw}
	}

	opts := &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true, AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}
	covered := map[*routers.Route]int{}
	for _, c := range calls {
		name := c.method + " " + c.path
		if len(name) > 80 {
			name = name[:80]
		}
		r := send(c.method, c.path, c.body, c.headers)
		if r.status != c.status {
			t.Errorf("%s: status %d, want %d: %.300s", name, r.status, c.status, r.raw)
			continue
		}
		req := httptest.NewRequest(c.method, c.path, nil)
		route, params, err := router.FindRoute(req)
		if err != nil {
			t.Errorf("%s: not in openapi.json: %v", name, err)
			continue
		}
		covered[route]++
		in := &openapi3filter.ResponseValidationInput{
			RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts},
			Status:                 r.status,
			Header:                 r.header,
			Body:                   io.NopCloser(bytes.NewReader(r.raw)),
			Options:                opts,
		}
		if err := openapi3filter.ValidateResponse(ctx, in); err != nil {
			t.Errorf("%s: the %d response does not match openapi.json: %v\nbody: %.300s", name, r.status, err, r.raw)
		}
	}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			route, _, err := router.FindRoute(httptest.NewRequest(method, strings.NewReplacer("{id}", uuid.NewString(), "{account_id}", uuid.NewString(),
				"{hold_id}", uuid.NewString(), "{transfer_id}", uuid.NewString(), "{seq}", "1", "{asset}", "console.js").Replace(path), nil))
			if err != nil || covered[route] == 0 {
				t.Errorf("%s %s: no response of it was validated", method, path)
			}
		}
	}
}

// TestOpenAPIDocumentsHeaders: every response documents X-Trace-Id, and
// every 401 documents the WWW-Authenticate challenge.
func TestOpenAPIDocumentsHeaders(t *testing.T) {
	t.Parallel()
	doc, err := openapi3.NewLoader().LoadFromData(openAPI)
	if err != nil {
		t.Fatal(err)
	}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			for code, resp := range op.Responses.Map() {
				where := method + " " + path + " " + code
				if resp.Value.Headers["X-Trace-Id"] == nil {
					t.Errorf("%s: X-Trace-Id is not documented", where)
				}
				if code == "401" && resp.Value.Headers["WWW-Authenticate"] == nil {
					t.Errorf("%s: WWW-Authenticate is not documented", where)
				}
			}
			found := false
			for _, p := range op.Parameters {
				found = found || (p.Value.In == "header" && http.CanonicalHeaderKey(p.Value.Name) == "X-Trace-Id")
			}
			if !found {
				t.Errorf("%s %s: the X-Trace-Id request header is not documented", method, path)
			}
		}
	}
}

// withLabels adds metadata and a reference to a JSON request body.
func withLabels(body, reference string) string {
	return strings.TrimSuffix(body, "}") + `,"metadata":{"order_id":"A-1001","note":"caf\u00e9 <b>"},"reference":"` + reference + `"}`
}

// sendHeadOnly announces a body of n bytes and sends none of it. The server
// refuses an oversized body from its Content-Length and closes; a client
// still writing the body would race that close (a reset or a broken pipe
// instead of the answer), so only the head goes out.
func sendHeadOnly(base, method, path string, n int, headers []string) (*http.Response, error) {
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		return nil, err
	}
	head := method + " " + path + " HTTP/1.1\r\nHost: wallet\r\nContent-Type: application/json\r\nContent-Length: " + strconv.Itoa(n) + "\r\n"
	for i := 0; i+1 < len(headers); i += 2 {
		head += headers[i] + ": " + headers[i+1] + "\r\n"
	}
	if _, err := conn.Write([]byte(head + "\r\n")); err != nil {
		conn.Close()
		return nil, err
	}
	if err := conn.SetReadDeadline(time.Now().Add(30 * time.Second)); err != nil {
		conn.Close()
		return nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		conn.Close()
		return nil, err
	}
	// Closing the body closes the connection.
	resp.Body = struct {
		io.Reader
		io.Closer
	}{resp.Body, conn}
	return resp, nil
}
