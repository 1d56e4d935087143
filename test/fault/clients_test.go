package fault

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wallet/wallet/internal/transfer"
)

// submitter sends ops the way careful clients do: over HTTP to any
// gateway or straight to NATS, retrying with the same id after errors,
// timeouts and 503s until the service gives a definite answer.
type submitter struct {
	rec      *recorder
	gateways func() []string // base URLs, e.g. http://127.0.0.1:8080
	http     *http.Client
	js       []jetstream.JetStream // several connections, used in turn
	next     atomic.Uint64
	// attemptTimeout bounds one HTTP request or one publish.
	attemptTimeout time.Duration
}

func newHTTPClient(timeout time.Duration, keepAlive bool) *http.Client {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     30 * time.Second,
		DisableKeepAlives:   !keepAlive,
	}
	return &http.Client{Transport: tr, Timeout: timeout}
}

// httpBody is the path and JSON body of a v1 submission.
func httpBody(o *op) (path string, body []byte) {
	m := map[string]any{"id": o.ID.String()}
	if o.Amount != "" {
		m["amount"] = o.Amount
	}
	switch o.Kind {
	case transfer.KindTransfer:
		path = "/v1/transfers"
		m["from_account_id"], m["to_account_id"], m["currency"] = o.From.String(), o.To.String(), o.Currency
	case transfer.KindDeposit:
		path = "/v1/deposits"
		m["account_id"], m["currency"] = o.To.String(), o.Currency
	case transfer.KindWithdrawal:
		path = "/v1/withdrawals"
		m["account_id"], m["currency"] = o.From.String(), o.Currency
	case transfer.KindHold:
		path = "/v1/holds"
		m["from_account_id"], m["to_account_id"], m["currency"] = o.From.String(), o.To.String(), o.Currency
		if o.Timeout > 0 {
			m["timeout_seconds"] = o.Timeout
		}
	case transfer.KindPost:
		path = "/v1/holds/" + o.HoldID.String() + "/post"
	case transfer.KindVoid:
		path = "/v1/holds/" + o.HoldID.String() + "/void"
	case transfer.KindReversal:
		path = "/v1/transfers/" + o.Reverses.String() + "/reversals"
	}
	if o.Metadata != nil {
		m["metadata"] = o.Metadata
	}
	if o.Reference != "" {
		m["reference"] = o.Reference
	}
	body, _ = json.Marshal(m)
	return path, body
}

// envelope writes the request envelope of docs/messaging.md by hand, as a
// producer in another language would, rather than with the service's own
// encoder.
func envelope(o *op) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, `{"v":1,"kind":%q,"id":%q`, o.Kind, o.ID)
	switch o.Kind {
	case transfer.KindTransfer, transfer.KindHold:
		fmt.Fprintf(&b, `,"from_account_id":%q,"to_account_id":%q`, o.From, o.To)
	case transfer.KindDeposit:
		fmt.Fprintf(&b, `,"account_id":%q`, o.To)
	case transfer.KindWithdrawal:
		fmt.Fprintf(&b, `,"account_id":%q`, o.From)
	case transfer.KindPost, transfer.KindVoid:
		fmt.Fprintf(&b, `,"hold_id":%q`, o.HoldID)
	case transfer.KindReversal:
		fmt.Fprintf(&b, `,"transfer_id":%q`, o.Reverses)
	}
	if o.Amount != "" && o.Kind != transfer.KindVoid {
		fmt.Fprintf(&b, `,"amount":%q`, o.Amount)
	}
	if !o.Kind.NamesNoAccount() {
		fmt.Fprintf(&b, `,"currency":%q`, o.Currency)
	}
	if o.Timeout > 0 {
		fmt.Fprintf(&b, `,"timeout_seconds":%d`, o.Timeout)
	}
	if o.Metadata != nil {
		meta, _ := json.Marshal(o.Metadata)
		fmt.Fprintf(&b, `,"metadata":%s`, meta)
	}
	if o.Reference != "" {
		ref, _ := json.Marshal(o.Reference)
		fmt.Fprintf(&b, `,"reference":%s`, ref)
	}
	b.WriteString("}")
	return []byte(b.String())
}

// requestMsg is the NATS message for o: subject
// wallet.requests.<partition account>.<id>, Nats-Msg-Id the id.
func requestMsg(o *op) *nats.Msg {
	m := nats.NewMsg("wallet.requests." + o.partitionAccount().String() + "." + o.ID.String())
	m.Data = envelope(o)
	m.Header.Set("Nats-Msg-Id", o.ID.String())
	return m
}

// problemBody is the part of a problem document the clients read.
type problemBody struct {
	Code string `json:"code"`
}

// httpOnce makes one HTTP attempt. It returns the status (0 on a transport
// error) and the problem code, if any.
func (s *submitter) httpOnce(ctx context.Context, client *http.Client, base string, o *op) (int, string, error) {
	path, body := httpBody(o)
	ctx, cancel := context.WithTimeout(ctx, s.attemptTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+path, bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var p problemBody
	if resp.StatusCode >= 400 {
		_ = json.Unmarshal(data, &p)
	}
	return resp.StatusCode, p.Code, nil
}

// backoff waits before retry n, or returns false when ctx ends.
func backoff(ctx context.Context, n int) bool {
	d := time.Duration(20<<min(n, 5)) * time.Millisecond // 20ms .. 640ms
	d += time.Duration(rand.Int64N(int64(d)))
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

// submitHTTP submits o over HTTP until a definite answer, or until ctx
// ends (the id is then unsettled).
func (s *submitter) submitHTTP(ctx context.Context, client *http.Client, o *op) {
	for attempt := 0; ; attempt++ {
		gws := s.gateways()
		base := gws[(int(s.next.Add(1)))%len(gws)]
		status, code, err := s.httpOnce(ctx, client, base, o)
		switch {
		case err != nil:
			s.rec.answer(o.ID, "http error")
		case status >= 500:
			s.rec.count5xx(status)
			s.rec.answer(o.ID, fmt.Sprintf("http %d", status))
			// 503 (not stored) and 504 outcome_unknown (may be stored)
			// both call for a retry with the same id.
			if status != http.StatusServiceUnavailable && (status != http.StatusGatewayTimeout || code != "outcome_unknown") {
				s.rec.problem("%s: http %d %s", o, status, code)
			}
		case o.GatewayRefuses:
			s.classifyRefusal(o, status, code)
			return
		case status == http.StatusOK || status == http.StatusCreated || status == http.StatusAccepted:
			s.rec.accepted(o.ID, fmt.Sprintf("http %d", status), 0)
			return
		case status == http.StatusUnprocessableEntity && o.Kind.NamesNoAccount() && isUnknownTarget(code):
			// The gateway knew no hold or transfer to file the post,
			// void or reversal under, and stored nothing - unless this
			// is a retry of an attempt that was stored and rejected so.
			s.rec.targetUnknown(o.ID, "http 422 "+code)
			return
		case status == http.StatusUnprocessableEntity && isBusinessReason(code):
			// A resubmission of a decided, rejected request.
			s.rec.accepted(o.ID, "http 422 "+code, 0)
			return
		default:
			s.rec.answer(o.ID, fmt.Sprintf("http %d %s", status, code))
			s.rec.problem("%s: unexpected http %d %s", o, status, code)
			return
		}
		if !backoff(ctx, attempt) {
			s.rec.unsettled(o.ID)
			return
		}
	}
}

// classifyRefusal checks the answer to a request the gateway must refuse.
func (s *submitter) classifyRefusal(o *op, status int, code string) {
	if status == http.StatusBadRequest || status == http.StatusUnprocessableEntity {
		s.rec.refused(o.ID, status, code)
		if len(o.Reasons) > 0 && code != string(o.Reasons[0]) {
			s.rec.problem("%s: refused with %q, want %q", o, code, o.Reasons[0])
		}
		return
	}
	s.rec.answer(o.ID, fmt.Sprintf("http %d %s", status, code))
	s.rec.problem("%s: must be refused, got http %d %s", o, status, code)
	if status < 300 {
		// Stored although invalid: the book check will see it too.
		s.rec.accepted(o.ID, fmt.Sprintf("http %d", status), 0)
	}
}

// isBusinessReason reports whether code is a rejection a worker decides.
func isBusinessReason(code string) bool {
	switch transfer.Code(code) {
	case transfer.CodeInsufficientFunds, transfer.CodeSenderAccountNotExist, transfer.CodeReceiverAccountNotExist,
		transfer.CodeSenderAccountWrongCurrency, transfer.CodeReceiverAccountWrongCurrency,
		transfer.CodeAccountNotExist, transfer.CodeAccountWrongCurrency, transfer.CodeCurrencyNotSupported,
		transfer.CodeHoldAlreadyPosted, transfer.CodeHoldAlreadyVoided, transfer.CodeHoldExpired,
		transfer.CodePostAmountExceedsHold, transfer.CodeReversalExceedsTransfer:
		return true
	}
	return false
}

// isUnknownTarget reports whether code is the gateway's answer to a post,
// void or reversal whose hold or transfer it does not know (or that moved
// no money): nothing stored, or a resubmission of one rejected so.
func isUnknownTarget(code string) bool {
	switch transfer.Code(code) {
	case transfer.CodeHoldNotFound, transfer.CodeTransferNotFound, transfer.CodeTransferNotReversible:
		return true
	}
	return false
}

// natsOnce publishes o once and waits for its PubAck.
func (s *submitter) natsOnce(ctx context.Context, js jetstream.JetStream, o *op) (*jetstream.PubAck, error) {
	ctx, cancel := context.WithTimeout(ctx, s.attemptTimeout)
	defer cancel()
	return js.PublishMsg(ctx, requestMsg(o))
}

// submitNATS publishes o until it gets a PubAck.
func (s *submitter) submitNATS(ctx context.Context, js jetstream.JetStream, o *op) {
	for attempt := 0; ; attempt++ {
		ack, err := s.natsOnce(ctx, js, o)
		if err == nil {
			by := "nats puback"
			if ack.Duplicate {
				by = "nats puback duplicate"
			}
			s.rec.accepted(o.ID, by, ack.Sequence)
			return
		}
		s.rec.answer(o.ID, "nats error")
		if !backoff(ctx, attempt) {
			s.rec.unsettled(o.ID)
			return
		}
	}
}

func (s *submitter) pickJS() jetstream.JetStream {
	return s.js[int(s.next.Add(1))%len(s.js)]
}

// submit sends o by its route; a storm sends it from many connections
// over both routes at once; a conflict follows an accepted request with
// its twin.
func (s *submitter) submit(ctx context.Context, o *op) {
	s.rec.sent(o)
	switch {
	case o.Storm > 0:
		var wg sync.WaitGroup
		for i := 0; i < o.Storm; i++ {
			wg.Add(2)
			go func() {
				defer wg.Done()
				// A fresh connection per submission.
				c := newHTTPClient(s.attemptTimeout, false)
				s.submitHTTP(ctx, c, o)
				c.CloseIdleConnections()
			}()
			go func() {
				defer wg.Done()
				s.submitNATS(ctx, s.js[i%len(s.js)], o)
			}()
		}
		wg.Wait()
	case o.Route == viaNATS:
		s.submitNATS(ctx, s.pickJS(), o)
	case o.Route == viaLegacy:
		s.submitLegacy(ctx, o)
	default:
		s.submitHTTP(ctx, s.http, o)
	}
	if o.Conflict {
		s.conflict(ctx, o)
	}
}

// conflict resubmits o's id with another amount: over HTTP it must be a
// 409; over NATS the PubAck's duplicate flag is recorded for the book
// check, which knows when the stream must still have held the id (see
// checkTwins).
func (s *submitter) conflict(ctx context.Context, o *op) {
	twin := o.conflicting()
	s.rec.twin(o.ID, twin, func(*twinRecord) {})
	for attempt := 0; ; attempt++ {
		gws := s.gateways()
		status, code, err := s.httpOnce(ctx, s.http, gws[int(s.next.Add(1))%len(gws)], twin)
		// 503 (not stored) and 504 outcome_unknown (may be stored) call
		// for the same request again, as in submitHTTP.
		retry := status == http.StatusServiceUnavailable || (status == http.StatusGatewayTimeout && code == "outcome_unknown")
		if err == nil && retry {
			s.rec.count5xx(status)
		}
		if err == nil && !retry {
			s.rec.answer(o.ID, fmt.Sprintf("conflict http %d %s", status, code))
			s.rec.twin(o.ID, twin, func(t *twinRecord) { t.HTTPStatus, t.HTTPCode, t.HTTPDoneAt = status, code, time.Now() })
			if status != http.StatusConflict || code != string(transfer.CodeTransferIDConflict) {
				s.rec.problem("%s: same id, other amount: http %d %q, want 409 transfer_id_conflict", o, status, code)
			}
			break
		}
		if !backoff(ctx, attempt) {
			return
		}
	}
	for attempt := 0; ; attempt++ {
		ack, err := s.natsOnce(ctx, s.pickJS(), twin)
		if err == nil {
			s.rec.answer(o.ID, fmt.Sprintf("conflict nats duplicate=%t", ack.Duplicate))
			s.rec.twin(o.ID, twin, func(t *twinRecord) { t.NATSAcked, t.NATSDuplicate, t.NATSAckAt = true, ack.Duplicate, time.Now() })
			return
		}
		s.rec.twin(o.ID, twin, func(t *twinRecord) { t.NATSFailed++ })
		if !backoff(ctx, attempt) {
			return
		}
	}
}

// legacyBody is the 2020 API's body for o, with the amount as a JSON number
// when it is one, as its older clients sent it.
func legacyBody(o *op) []byte {
	amount := strconv.Quote(o.Amount)
	if o.ID[0]%2 == 0 {
		amount = o.Amount
	}
	return []byte(`{"id":"` + o.ID.String() + `","sender_account_id":"` + o.From.String() + `","receiver_account_id":"` +
		o.To.String() + `","amount":` + amount + `,"currency_code":"` + o.Currency + `"}`)
}

// legacyOnce makes one 2020-API call. It returns the HTTP status (0 on a
// transport error) and the envelope's result and error.
func (s *submitter) legacyOnce(ctx context.Context, client *http.Client, base string, o *op) (int, string, string, error) {
	ctx, cancel := context.WithTimeout(ctx, s.attemptTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/transfers/", bytes.NewReader(legacyBody(o)))
	if err != nil {
		return 0, "", "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", "", err
	}
	defer resp.Body.Close()
	var e struct {
		Result string `json:"result"`
		Error  string `json:"error"`
	}
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	_ = json.Unmarshal(data, &e)
	return resp.StatusCode, e.Result, e.Error, nil
}

// legacyUntilAnswer calls the 2020 API with o until it answers OK or ERROR
// with a business reason. A 503 (an outage, or no outcome in time) is
// retried with the same id, which the 2020 API makes safe: an applied
// attempt answers OK, a rejected one is decided afresh. It returns the
// final result, or "" if ctx ended first.
func (s *submitter) legacyUntilAnswer(ctx context.Context, client *http.Client, o *op) (string, string) {
	for attempt := 0; ; attempt++ {
		gws := s.gateways()
		status, result, code, err := s.legacyOnce(ctx, client, gws[int(s.next.Add(1))%len(gws)], o)
		switch {
		case err != nil:
			s.rec.answer(o.ID, "2020 error")
		case status == http.StatusServiceUnavailable:
			s.rec.count5xx(status)
			s.rec.answer(o.ID, "2020 503")
		case status == http.StatusOK && result == "OK":
			s.rec.accepted(o.ID, "2020 OK", 0)
			return result, ""
		case status == http.StatusOK && result == "ERROR" && isBusinessReason(code):
			s.rec.accepted(o.ID, "2020 ERROR "+code, 0)
			return result, code
		default:
			s.rec.answer(o.ID, fmt.Sprintf("2020 %d %s %s", status, result, code))
			s.rec.problem("%s: unexpected 2020 answer %d %s %s", o, status, result, code)
			return "", ""
		}
		if !backoff(ctx, attempt) {
			return "", ""
		}
	}
}

// submitLegacy sends a 2020-API op and, once it is rejected, its retry
// from two connections at once.
func (s *submitter) submitLegacy(ctx context.Context, o *op) {
	result, _ := s.legacyUntilAnswer(ctx, s.http, o)
	if result == "" {
		s.rec.unsettled(o.ID)
		return
	}
	if result == "OK" || o.Retry == nil {
		return
	}
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := newHTTPClient(s.attemptTimeout, false)
			defer c.CloseIdleConnections()
			s.legacyUntilAnswer(ctx, c, o.Retry)
		}()
	}
	wg.Wait()
}
