package fault

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
)

// hostileCase is one request a client should never be able to hurt the
// gateway with. Every one must get a 4xx: not a 5xx, and never a 2xx,
// which would mean something invalid was accepted.
type hostileCase struct {
	name        string
	method      string
	path        string
	contentType string
	header      map[string]string
	body        []byte
}

// mayHangUp reports whether the server may close the connection instead of
// answering: a body past the 64 KiB limit can be cut off mid-upload.
func (c hostileCase) mayHangUp() bool { return len(c.body) > 64<<10 }

// hostileTable builds the table around real accounts, so that each case
// is wrong in one way only. Every id it uses is in ids, so the check can
// prove none of them was stored.
func hostileTable(rng *rand.Rand, w *world) (cases []hostileCase, ids []uuid.UUID) {
	usd := w.ByCurrency["USD"]
	a, b := usd[0].ID.String(), usd[1].ID.String()
	jpy := w.ByCurrency["JPY"][0].ID.String()
	newID := func() string {
		id := newUUID(rng)
		ids = append(ids, id)
		return id.String()
	}
	transferBody := func(id, from, to, amount, currency string) []byte {
		return []byte(fmt.Sprintf(`{"id":%s,"from_account_id":%s,"to_account_id":%s,"amount":%s,"currency":%s}`, id, from, to, amount, currency))
	}
	q := func(s string) string { return fmt.Sprintf("%q", s) }
	add := func(name, method, path, ct string, body []byte) {
		cases = append(cases, hostileCase{name: name, method: method, path: path, contentType: ct, body: body})
	}
	post := func(name string, body []byte) { add(name, http.MethodPost, "/v1/transfers", "application/json", body) }
	amountCase := func(name, amount, currency string) {
		post("amount "+name, transferBody(q(newID()), q(a), q(b), amount, q(currency)))
	}

	// Malformed JSON and wrong shapes.
	for _, s := range []string{``, `{`, `}`, `{"id":`, `[]`, `null`, `"x"`, `1`, `{} {}`, `{"id":"x"}}`,
		`{"id" "x"}`, `{'id':'x'}`, `{"id":"x",}`, `{,}`, "\x00\x01\x02", "\xff\xfe\xfd", strings.Repeat("[", 100000),
		`{"a":` + strings.Repeat(`{"a":`, 5000) + `1` + strings.Repeat(`}`, 5001)} {
		post("malformed "+truncateLine(s)[:min(len(s), 12)], []byte(s))
	}
	id := newID()
	post("duplicate key", []byte(fmt.Sprintf(`{"id":%q,"id":%q,"from_account_id":%q,"to_account_id":%q,"amount":"1","currency":"USD"}`, id, newID(), a, b)))
	post("unknown field", []byte(fmt.Sprintf(`{"id":%q,"from_account_id":%q,"to_account_id":%q,"amount":"1","currency":"USD","admin":true}`, newID(), a, b)))
	post("case-folded key", []byte(fmt.Sprintf(`{"ID":%q,"from_account_id":%q,"to_account_id":%q,"amount":"1","currency":"USD"}`, newID(), a, b)))
	post("trailing garbage", append(transferBody(q(newID()), q(a), q(b), `"1"`, `"USD"`), []byte(` trailing`)...))
	post("nested value", transferBody(q(newID()), q(a), q(b), `{"value":"1"}`, `"USD"`))
	post("array value", transferBody(q(newID()), q(a), q(b), `["1"]`, `"USD"`))
	post("huge string", transferBody(q(newID()), q(a), q(b), `"1"`, q(strings.Repeat("U", 60000))))
	post("invalid utf-8 in a string", transferBody(q(newID()), q(a), q(b), `"1"`, "\"US\xffD\""))
	post("escaped nul", transferBody(q(newID()), q(a), q(b), `"1"`, `"US\u0000D"`))
	post("lone surrogate", transferBody(q(newID()), q(a), q(b), `"1"`, `"\ud800"`))

	// Ids that are not uuids, or could break a subject.
	for _, bad := range []string{"", "not-a-uuid", "a.b.>", "wallet.>", "*", ">", "x y", " " + a, a + " ", "{" + a + "}",
		"urn:uuid:" + a, a[:35], a + "0", strings.Repeat("9", 36), "00000000-0000-0000-0000-000000000000", "\u0000", "../../etc/passwd"} {
		post("id "+q(bad), transferBody(q(bad), q(a), q(b), `"1"`, `"USD"`))
		post("from "+q(bad), transferBody(q(newID()), q(bad), q(b), `"1"`, `"USD"`))
		add("deposit account "+q(bad), http.MethodPost, "/v1/deposits", "application/json",
			[]byte(fmt.Sprintf(`{"id":%q,"account_id":%q,"amount":"1","currency":"USD"}`, newID(), bad)))
	}
	post("id a number", transferBody("12345", q(a), q(b), `"1"`, `"USD"`))
	post("id null", transferBody("null", q(a), q(b), `"1"`, `"USD"`))
	post("same account both sides", transferBody(q(newID()), q(a), q(a), `"1"`, `"USD"`))

	// Amounts.
	for _, amt := range []string{`1e400`, `"1e400"`, `"NaN"`, `"Infinity"`, `"-Infinity"`, `"-0"`, `"0"`, `"0.00"`, `"-1"`,
		`"0.001"`, `"0.004"`, q(strings.Repeat("9", 40)), q("1" + strings.Repeat("0", 18)), q("0." + strings.Repeat("0", 40) + "1"),
		`100`, `1.5`, `-1`, `true`, `null`, `""`, `" 1"`, `"1 "`, `"1,5"`, `"0x10"`, `"+-1"`, `"1..2"`, `".5"`, `"5."`,
		`"١٢"`, `"1e2"`, `"1E2"`, `"∞"`} {
		amountCase(amt, amt, "USD")
	}
	amountCase("0.4 JPY rounds to zero", `"0.4"`, "JPY")
	amountCase("0.000000001 BTC rounds to zero", `"0.000000001"`, "BTC")

	// Currencies.
	for _, cur := range []string{"XXX", "XAU", "", "U", "U$D", "US.D", "USD>", strings.Repeat("A", 13), "ÜSD", "\u0000\u0000"} {
		post("currency "+q(cur), transferBody(q(newID()), q(a), q(b), `"1"`, q(cur)))
	}
	post("currency a number", transferBody(q(newID()), q(a), q(b), `"1"`, `840`))
	post("receiver in another currency, trailing garbage", append(transferBody(q(newID()), q(a), q(jpy), `"1"`, `"USD"`), 'x'))

	// Content types.
	valid := transferBody(q(newID()), q(a), q(b), `"1"`, `"USD"`)
	for _, ct := range []string{"", "text/plain", "application/xml", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
		"application/json; charset=latin1", "application/jsonx", "*/*"} {
		add("content type "+q(ct), http.MethodPost, "/v1/transfers", ct, valid)
	}
	add("form body", http.MethodPost, "/v1/transfers", "application/x-www-form-urlencoded", []byte("id="+newID()+"&amount=1"))

	// Methods and paths.
	for _, m := range []string{http.MethodPut, http.MethodDelete, http.MethodPatch} {
		add("method "+m, m, "/v1/transfers", "application/json", valid)
	}
	for _, p := range []string{"/v1/transfers/not-a-uuid", "/v1/transfers/" + strings.Repeat("a", 4000), "/v1/accounts/%00",
		"/v1/accounts/a.b.%3E", "/v1/accounts/" + a + "/entries?limit=-1", "/v1/accounts/" + a + "/entries?limit=99999999999999999999",
		"/v1/accounts/" + a + "/entries?cursor=%ff%fe", "/v1/accounts?limit=abc", "/v1/accounts?cursor=" + strings.Repeat("Z", 3000),
		"/v1/transfers/..%2F..%2Fetc%2Fpasswd", "/v2/transfers", "/accounts/not-a-uuid/transfers/", "/v1/transfers/" + newID()} {
		add("path "+truncateLine(p)[:min(len(p), 40)], http.MethodGet, p, "", nil)
	}
	add("legacy garbage", http.MethodPost, "/transfers/", "application/json", []byte(`{"id":"x","amount":"NaN"}`))
	add("legacy number overflow", http.MethodPost, "/transfers/", "application/json",
		[]byte(fmt.Sprintf(`{"id":%q,"sender_account_id":%q,"receiver_account_id":%q,"amount":1e400,"currency_code":"USD"}`, newID(), a, b)))
	add("account bad currency", http.MethodPost, "/v1/accounts", "application/json", []byte(`{"currency":"NOPE1"}`))
	add("account id subject", http.MethodPost, "/v1/accounts", "application/json", []byte(`{"id":"a.b.>","currency":"USD"}`))

	// Headers.
	withHeader := func(name string, h map[string]string) {
		cases = append(cases, hostileCase{name: name, method: http.MethodPost, path: "/v1/transfers", contentType: "application/json",
			header: h, body: transferBody(q(newID()), q(a), q(a), `"1"`, `"USD"`)})
	}
	withHeader("prefer wait huge", map[string]string{"Prefer": "wait=99999999999999999999"})
	withHeader("prefer wait negative", map[string]string{"Prefer": "wait=-1"})
	withHeader("prefer garbage", map[string]string{"Prefer": "wait=abc, wait=1, ;;;"})
	withHeader("bearer junk", map[string]string{"Authorization": "Bearer " + strings.Repeat("x", 3000)})
	withHeader("request id junk", map[string]string{"X-Request-Id": strings.Repeat("\u00e9", 500)})
	withHeader("trace id junk", map[string]string{"X-Trace-Id": strings.Repeat("\u00e9", 500)})
	return cases, ids
}

// send makes one request of c and returns the status (0 on a transport error).
func (c hostileCase) send(ctx context.Context, client *http.Client, base string) (int, error) {
	var body io.Reader
	if c.body != nil {
		body = bytes.NewReader(c.body)
	}
	req, err := http.NewRequestWithContext(ctx, c.method, base+c.path, body)
	if err != nil {
		// Some paths are not even valid URLs for the client; send raw.
		return rawRequest(ctx, base, fmt.Sprintf("%s %s HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
			c.method, c.path, c.contentType, len(c.body), c.body))
	}
	if c.contentType != "" {
		req.Header.Set("Content-Type", c.contentType)
	}
	for k, v := range c.header {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	return resp.StatusCode, nil
}

// rawRequest writes raw bytes to the gateway and reads the status line.
// A connection the server closes without an answer gives status 0 and no
// error: refusing to talk is an acceptable answer to garbage.
func rawRequest(ctx context.Context, base, raw string) (int, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(conn, raw); err != nil {
		return 0, nil
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return 0, nil
	}
	var proto string
	var status int
	if _, err := fmt.Sscanf(line, "%s %d", &proto, &status); err != nil {
		return 0, fmt.Errorf("bad status line %q", line)
	}
	return status, nil
}

// rssSampler records a process's peak resident memory.
type rssSampler struct {
	peak atomic.Int64
	stop chan struct{}
	done chan struct{}
}

func sampleRSS(p *proc) *rssSampler {
	s := &rssSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			if v, err := p.rss(); err == nil && v > s.peak.Load() {
				s.peak.Store(v)
			}
			select {
			case <-s.stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	return s
}

func (s *rssSampler) finish() int64 {
	close(s.stop)
	<-s.done
	return s.peak.Load()
}

// slowLoris opens n connections that send a request's headers a byte at a
// time and never finish. It returns a function that waits, up to ctx's
// end, for the server to close every one, and reports how many it did.
func slowLoris(ctx context.Context, base string, n int) (closed func() int, err error) {
	var wg sync.WaitGroup
	var count atomic.Int64
	head := "POST /v1/deposits HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\nX-Slow: "
	for i := 0; i < n; i++ {
		conn, err := (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, "tcp", strings.TrimPrefix(base, "http://"))
		if err != nil {
			return nil, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer conn.Close()
			// Half the connections dribble headers, the others a body.
			msg := head
			if i%2 == 1 {
				msg = strings.TrimSuffix(head, "X-Slow: ") + "\r\n{\"id\":\""
			}
			for j := 0; ; j++ {
				_ = conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
				var chunk string
				if j < len(msg) {
					chunk = msg[j : j+1]
				} else {
					chunk = "a"
				}
				if _, err := io.WriteString(conn, chunk); err != nil {
					count.Add(1)
					return
				}
				// A read that sees EOF or a reset means the server hung up.
				_ = conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
				var buf [512]byte
				if _, err := conn.Read(buf[:]); err != nil {
					var ne net.Error
					if !errors.As(err, &ne) || !ne.Timeout() {
						count.Add(1)
						return
					}
				} else {
					// The server answered (408 or 400) and will close.
					count.Add(1)
					return
				}
				if ctx.Err() != nil {
					return
				}
			}
		}()
	}
	return func() int { wg.Wait(); return int(count.Load()) }, nil
}

// TestHostileHTTP drives the gateway with the hostile table at volume,
// slow-loris connections, oversized headers and 10 MB bodies, while valid
// clients keep submitting: no 5xx, no crash, bounded memory, nothing
// hostile stored, and every valid request applied.
func TestHostileHTTP(t *testing.T) {
	// Runs beside the other attack test: each has its own cluster and
	// database, and both spend most of their time waiting.
	t.Parallel()
	total, workers, loris, budget := 4000, 16, 200, 5*time.Minute
	if long() {
		total, workers, loris, budget = 100000, 32, 1000, 20*time.Minute
	}
	s := seed(t)
	began := time.Now()
	rng := rand.New(rand.NewPCG(s, 0x4057))
	c := startCluster(t, clusterConfig{Gateways: 1, Workers: 1})
	r := newRun(t, c, rng, 4)
	t.Logf("%s: cluster up", time.Since(began).Round(time.Millisecond))
	gw := c.gateways[0]
	base := gw.baseURL()
	ctx, cancel := context.WithTimeout(t.Context(), budget)
	defer cancel()
	cases, hostileIDs := hostileTable(rng, r.world)

	baseline, err := gw.rss()
	if err != nil {
		t.Fatal(err)
	}
	sampler := sampleRSS(gw.proc)

	// Valid traffic alongside, over HTTP only.
	model := newLoadModel(rand.New(rand.NewPCG(rng.Uint64(), 1)), r.world, 0, 0, 0)
	model.natsShare = 0
	r.submitAll(ctx, model.fundingOps())
	validCtx, stopValid := context.WithCancel(ctx)
	waitValid := r.load(validCtx, ctx, model, 40, 8)

	loriCtx, stopLoris := context.WithTimeout(ctx, 2*time.Minute)
	defer stopLoris()
	lorisClosed, err := slowLoris(loriCtx, base, loris)
	if err != nil {
		t.Fatal(err)
	}

	var (
		mu       sync.Mutex
		statuses = map[int]int{}
		bad      []string
		sent     atomic.Int64
	)
	note := func(name string, status int, err error, mayHangUp bool) {
		mu.Lock()
		defer mu.Unlock()
		if status == 0 && mayHangUp {
			statuses[-1]++
			return
		}
		statuses[status]++
		if (status == 0 && err != nil) || status >= 500 || (status > 0 && status < 400) {
			if len(bad) < 20 {
				bad = append(bad, fmt.Sprintf("%s: status %d %v", name, status, err))
			}
		}
	}
	var wg sync.WaitGroup
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := newHTTPClient(30*time.Second, true)
			defer client.CloseIdleConnections()
			for n := sent.Add(1); n <= int64(total); n = sent.Add(1) {
				hc := cases[int(n)%len(cases)]
				status, err := hc.send(ctx, client, base)
				note(hc.name, status, err, hc.mayHangUp())
			}
		}()
	}
	// Oversized requests, a few at a time: headers past any sane limit,
	// a huge URL, and bodies far past the body limit.
	bigHeader := "GET /v1/currencies HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 1<<20) + "\r\n\r\n"
	manyHeaders := "GET /v1/currencies HTTP/1.1\r\nHost: x\r\n" + strings.Repeat("X-H: v\r\n", 10000) + "\r\n"
	longURL := "GET /v1/accounts/" + strings.Repeat("a", 1<<20) + " HTTP/1.1\r\nHost: x\r\n\r\n"
	bigBody := strings.Repeat("a", 10<<20)
	for i := 0; i < 10; i++ {
		for name, raw := range map[string]string{"1 MiB header": bigHeader, "10000 headers": manyHeaders, "1 MiB url": longURL,
			"10 MiB body": "POST /v1/transfers HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10485760\r\n\r\n" + bigBody,
			"10 MiB chunked body": "POST /v1/transfers HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" +
				fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(bigBody), bigBody)} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				status, err := rawRequest(ctx, base, raw)
				// Hanging up is an acceptable answer to these.
				note(name, status, err, true)
			}()
		}
	}
	wg.Wait()
	t.Logf("%s: flood done", time.Since(began).Round(time.Millisecond))
	answered := 0
	for _, n := range statuses {
		answered += n
	}
	t.Logf("%d hostile requests answered (%d from the table, 50 oversized); by status (0: transport error, -1: connection closed): %v",
		answered, total, statuses)
	if answered != total+50 {
		t.Errorf("%d hostile requests answered, want %d", answered, total+50)
	}

	// Valid traffic keeps flowing until the slow connections are gone.
	closedLoris := lorisClosed()
	t.Logf("%s: slow connections gone", time.Since(began).Round(time.Millisecond))
	stopValid()
	waitValid()
	peak := sampler.finish()
	t.Logf("gateway RSS: %d MiB before, %d MiB peak", baseline>>20, peak>>20)
	t.Logf("slow-loris: %d of %d connections closed by the gateway", closedLoris, loris)

	if len(bad) > 0 {
		t.Errorf("hostile requests got answers other than 4xx:\n  %s", strings.Join(bad, "\n  "))
	}
	if closedLoris != loris {
		t.Errorf("the gateway kept %d slow-loris connections open for 2 minutes", loris-closedLoris)
	}
	// Memory: the gateway must not buffer what it refuses. 256 MiB is far
	// above its working set and far below what buffering 10 MiB bodies or
	// thousands of slow connections would take.
	if peak > 256<<20 {
		t.Errorf("gateway RSS peaked at %d MiB", peak>>20)
	}

	qctx, qcancel := context.WithTimeout(ctx, 2*time.Minute)
	defer qcancel()
	if err := r.quiesce(qctx); err != nil {
		t.Errorf("quiesce: %v", err)
	}
	conn, err := c.db(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rep, err := checkBook(ctx, conn, r.js, r.rec, checkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var leaked int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM transfers WHERE id = ANY($1)`, hostileIDs).Scan(&leaked); err != nil {
		t.Fatal(err)
	}
	if leaked > 0 {
		rep.Violations.add(checkRefused, "%d hostile requests were stored", leaked)
	}
	for _, crash := range c.crashes() {
		rep.Violations.add(checkCrash, "%s", crash)
	}
	t.Logf("valid traffic alongside:\n%s", rep)
	if rep.Violations.total() != 0 {
		t.Errorf("violations (seed %d):%s", s, rep.Violations)
	}
	if rep.Accepted == 0 {
		t.Error("no valid request was accepted during the attack")
	}
	writeReport(t, "hostile", map[string]any{"seed": s, "requests": total, "statuses": statuses, "rss_before_mib": baseline >> 20,
		"rss_peak_mib": peak >> 20, "slow_loris": loris, "slow_loris_closed": closedLoris, "valid_accepted": rep.Accepted})
}
