package load

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
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
		return "/v1/holds/" + r.HoldID.String() + "/" + string(r.Kind), append(b, `"}`...)
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
	b = append(b, '}')
	return path, b
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
