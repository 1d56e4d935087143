package load

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/wallet/wallet/internal/transfer"
)

// httpAttempts bounds the sends of one request: a 503 (NATS full or away)
// or a dropped connection is retried with the same id, which the service
// deduplicates.
const httpAttempts = 4

// gatewayClient talks to the HTTP gateway over keep-alive connections.
type gatewayClient struct {
	base   string
	token  string
	client *http.Client
}

func newGatewayClient(base, token string, conns int) *gatewayClient {
	tr := &http.Transport{
		Proxy:               nil, // loopback only: never through a proxy
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	return &gatewayClient{
		base:   strings.TrimRight(base, "/"),
		token:  token,
		client: &http.Client{Transport: tr, Timeout: 30 * time.Second},
	}
}

func (g *gatewayClient) close() { g.client.CloseIdleConnections() }

// httpError is a response the tool did not want; Class groups them in the report.
type httpError struct {
	Status int
	Code   string
}

func (e *httpError) Error() string { return e.Class() }

// Class names the error for the report's failure counts.
func (e *httpError) Class() string {
	if e.Code != "" {
		return fmt.Sprintf("http %d %s", e.Status, e.Code)
	}
	return fmt.Sprintf("http %d", e.Status)
}

// post sends body and returns the status, retrying what may succeed on a
// second try. ok lists the statuses that are success.
func (g *gatewayClient) post(ctx context.Context, path string, body []byte, ok ...int) (int, error) {
	var err error
	backoff := 20 * time.Millisecond
	for attempt := 1; attempt <= httpAttempts; attempt++ {
		var status int
		status, err = g.postOnce(ctx, path, body, ok)
		if err == nil {
			return status, nil
		}
		var he *httpError
		retry := !errors.As(err, &he) || he.Status == http.StatusServiceUnavailable || he.Status == http.StatusTooManyRequests
		if !retry || ctx.Err() != nil || attempt == httpAttempts {
			break
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(backoff):
		}
		backoff *= 2
	}
	return 0, err
}

func (g *gatewayClient) postOnce(ctx context.Context, path string, body []byte, ok []int) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.base+path, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	if g.token != "" {
		req.Header.Set("Authorization", "Bearer "+g.token)
	}
	resp, err := g.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	// Reading the body to the end lets the connection be reused.
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, err
	}
	for _, s := range ok {
		if resp.StatusCode == s {
			return s, nil
		}
	}
	return 0, &httpError{Status: resp.StatusCode, Code: problemCode(data)}
}

// problemCode pulls the "code" member out of a problem document without a
// full decode; the report only needs it as a label.
func problemCode(body []byte) string {
	i := bytes.Index(body, []byte(`"code":"`))
	if i < 0 {
		return ""
	}
	rest := body[i+len(`"code":"`):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 || j > 64 {
		return ""
	}
	return string(rest[:j])
}

// createAccount creates an account; an existing one with the same currency is fine.
func (g *gatewayClient) createAccount(ctx context.Context, id uuid.UUID, currency string) error {
	body := []byte(`{"id":"` + id.String() + `","currency":"` + currency + `"}`)
	_, err := g.post(ctx, "/v1/accounts", body, http.StatusCreated, http.StatusOK)
	return err
}

// submit posts a request and returns once the gateway accepted it (202),
// or answered with its outcome (200/201/422 when it knew it already).
func (g *gatewayClient) submit(ctx context.Context, r transfer.Request) error {
	path, body := requestBody(r)
	_, err := g.post(ctx, path, body, http.StatusAccepted, http.StatusOK, http.StatusCreated, http.StatusUnprocessableEntity)
	return err
}

// requestBody writes r as the gateway's JSON body. It is built by hand: at
// tens of thousands of requests a second the load tool's own CPU counts.
func requestBody(r transfer.Request) (string, []byte) {
	b := make([]byte, 0, 200)
	b = append(b, `{"id":"`...)
	b = append(b, r.ID.String()...)
	path := "/v1/transfers"
	switch r.Kind {
	case transfer.KindPost, transfer.KindVoid:
		// The whole hold: no amount.
		b = append(b, '"')
		return "/v1/holds/" + r.HoldID.String() + "/" + string(r.Kind), append(appendLabels(b, r), '}')
	case transfer.KindHold:
		path = "/v1/holds"
		b = append(b, `","from_account_id":"`...)
		b = append(b, r.From.String()...)
		b = append(b, `","to_account_id":"`...)
		b = append(b, r.To.String()...)
	case transfer.KindDeposit:
		path = "/v1/deposits"
		b = append(b, `","account_id":"`...)
		b = append(b, r.To.String()...)
	case transfer.KindWithdrawal:
		path = "/v1/withdrawals"
		b = append(b, `","account_id":"`...)
		b = append(b, r.From.String()...)
	default:
		b = append(b, `","from_account_id":"`...)
		b = append(b, r.From.String()...)
		b = append(b, `","to_account_id":"`...)
		b = append(b, r.To.String()...)
	}
	b = append(b, `","amount":"`...)
	b = append(b, r.Amount.String()...)
	b = append(b, `","currency":`...)
	b = strconv.AppendQuote(b, r.Currency)
	if r.Kind == transfer.KindHold && r.Timeout > 0 {
		b = append(b, `,"timeout_seconds":`...)
		b = strconv.AppendInt(b, int64(r.Timeout/time.Second), 10)
	}
	b = append(appendLabels(b, r), '}')
	return path, b
}

// appendLabels writes r's metadata (keys sorted) and reference, if any, as
// further members of a JSON object. The workload's labels are plain ASCII,
// which strconv quotes as JSON does.
func appendLabels(b []byte, r transfer.Request) []byte {
	if len(r.Metadata) > 0 {
		b = append(b, `,"metadata":{`...)
		for i, k := range slices.Sorted(maps.Keys(r.Metadata)) {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendQuote(b, k)
			b = append(b, ':')
			b = strconv.AppendQuote(b, r.Metadata[k])
		}
		b = append(b, '}')
	}
	if r.Reference != "" {
		b = append(b, `,"reference":`...)
		b = strconv.AppendQuote(b, r.Reference)
	}
	return b
}

// errorClass names an error for the report's failure counts.
func errorClass(err error) string {
	var he *httpError
	switch {
	case errors.As(err, &he):
		return he.Class()
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return "stopped (deadline)"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	s := err.Error()
	if len(s) > 80 {
		s = s[:80]
	}
	return s
}

// Waiting for an outcome through the gateway: how long the v1 API is asked
// to wait (Prefer), and how long a request that is stored but not yet
// decided is polled before the tool gives up on it.
const (
	preferWait     = "wait=30"
	pendingPoll    = 20 * time.Millisecond
	pendingTimeout = time.Minute
)

// answer is an outcome read from the gateway's response.
type answer struct {
	status transfer.Status
	reason string
}

// legacyEnvelope is the 2020 API's answer.
type legacyEnvelope struct {
	Result string `json:"result"`
	Error  string `json:"error"`
}

// transferView is the part of a v1 transfer resource the tool reads.
type transferView struct {
	Status string `json:"status"`
	Reason string `json:"reason"`
}

// decide sends r and returns its outcome, the way a client of the 2020
// API sees it: a transfer goes to POST /transfers/, which answers with the
// outcome; the kinds that API never had (deposits, withdrawals, holds) go
// to the v1 API with Prefer: wait. A request stored but not decided in
// time (202) is sent again with the same id (2020 API) or polled (v1),
// which is what such a client does.
func (g *gatewayClient) decide(ctx context.Context, r transfer.Request) (answer, error) {
	if r.Kind == transfer.KindTransfer {
		return g.decideLegacy(ctx, r)
	}
	path, body := requestBody(r)
	status, data, err := g.send(ctx, http.MethodPost, path, body, preferWait)
	if err != nil {
		return answer{}, err
	}
	switch status {
	case http.StatusOK, http.StatusCreated:
		return answer{status: transfer.StatusApplied}, nil
	case http.StatusUnprocessableEntity:
		return answer{status: transfer.StatusRejected, reason: problemCode(data)}, nil
	case http.StatusAccepted:
		return g.pollTransfer(ctx, r.ID)
	}
	return answer{}, &httpError{Status: status, Code: problemCode(data)}
}

func (g *gatewayClient) decideLegacy(ctx context.Context, r transfer.Request) (answer, error) {
	body := legacyBody(r)
	deadline := time.Now().Add(pendingTimeout)
	backoff := pendingPoll
	for {
		status, data, err := g.send(ctx, http.MethodPost, "/transfers/", body, "")
		if err != nil {
			return answer{}, err
		}
		var env legacyEnvelope
		if status == http.StatusOK || status == http.StatusAccepted {
			if err := json.Unmarshal(data, &env); err != nil {
				return answer{}, fmt.Errorf("2020 API answer: %w", err)
			}
		}
		switch {
		case status == http.StatusOK && env.Result == "OK":
			return answer{status: transfer.StatusApplied}, nil
		case status == http.StatusOK:
			return answer{status: transfer.StatusRejected, reason: env.Error}, nil
		case status == http.StatusAccepted, status == http.StatusServiceUnavailable, status == http.StatusGatewayTimeout:
			// Stored and undecided, nothing stored, or not known: the
			// same id again is safe in all three (docs/api.md).
		default:
			return answer{}, &httpError{Status: status, Code: env.Error}
		}
		if time.Now().After(deadline) {
			return answer{}, &httpError{Status: status, Code: "no outcome in " + pendingTimeout.String()}
		}
		select {
		case <-ctx.Done():
			return answer{}, ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

// pollTransfer reads a stored request until it is decided.
func (g *gatewayClient) pollTransfer(ctx context.Context, id uuid.UUID) (answer, error) {
	deadline := time.Now().Add(pendingTimeout)
	for {
		status, data, err := g.send(ctx, http.MethodGet, "/v1/transfers/"+id.String(), nil, "")
		if err != nil {
			return answer{}, err
		}
		if status != http.StatusOK {
			return answer{}, &httpError{Status: status, Code: problemCode(data)}
		}
		var v transferView
		if err := json.Unmarshal(data, &v); err != nil {
			return answer{}, fmt.Errorf("transfer %s: %w", id, err)
		}
		switch transfer.Status(v.Status) {
		case transfer.StatusApplied:
			return answer{status: transfer.StatusApplied}, nil
		case transfer.StatusRejected:
			return answer{status: transfer.StatusRejected, reason: v.Reason}, nil
		}
		if time.Now().After(deadline) {
			return answer{}, &httpError{Status: status, Code: "no outcome in " + pendingTimeout.String()}
		}
		select {
		case <-ctx.Done():
			return answer{}, ctx.Err()
		case <-time.After(pendingPoll):
		}
	}
}

// send makes one request and returns the status and body, whatever the
// status; prefer, when set, is the Prefer header.
func (g *gatewayClient) send(ctx context.Context, method, path string, body []byte, prefer string) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, g.base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if prefer != "" {
		req.Header.Set("Prefer", prefer)
	}
	if g.token != "" {
		req.Header.Set("Authorization", "Bearer "+g.token)
	}
	resp, err := g.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, data, err
}

// legacyBody writes a transfer as the 2020 API's JSON body.
func legacyBody(r transfer.Request) []byte {
	b := make([]byte, 0, 200)
	b = append(b, `{"id":"`...)
	b = append(b, r.ID.String()...)
	b = append(b, `","sender_account_id":"`...)
	b = append(b, r.From.String()...)
	b = append(b, `","receiver_account_id":"`...)
	b = append(b, r.To.String()...)
	b = append(b, `","amount":"`...)
	b = append(b, r.Amount.String()...)
	b = append(b, `","currency_code":`...)
	b = strconv.AppendQuote(b, r.Currency)
	return append(b, '}')
}
