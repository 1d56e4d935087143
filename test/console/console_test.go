// Package console_test drives the operator console in headless Chromium
// against a real walletd: it loads every page on a laptop and a phone
// viewport, submits a transfer through the form and sees it applied, and
// fails on any console error, uncaught exception or refused resource.
//
// Screenshots go to the directory named by WALLET_CONSOLE_SCREENSHOTS
// (.ci/run sets .ci/artifacts/console), else to the test's artifact
// directory, kept with `go test -artifacts -outputdir DIR` and deleted
// after the test without -artifacts.
package console_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"

	"github.com/wallet/wallet/internal/dbtest"
	"github.com/wallet/wallet/internal/lifecycle"
	"github.com/wallet/wallet/internal/natsbus"
	"github.com/wallet/wallet/internal/proctest"
)

func TestMain(m *testing.M) { proctest.Main(m) }

const (
	readToken  = "console-test-read-token"
	writeToken = "console-test-write-token"
)

// chromium finds the browser. Outside CI a machine without it skips the
// test; CI must have it (.ci/run installs it).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("Chromium is not installed, and CI=true requires the browser test: install the Debian package chromium (.ci/run does)")
	}
	t.Skip("skipping the console's browser test: Chromium is not installed (apt-get install chromium)")
	return ""
}

func hashFlag(token, scope string) string {
	sum := sha256.Sum256([]byte(token))
	return "sha256:" + hex.EncodeToString(sum[:]) + ":" + scope
}

// api calls walletd's HTTP API with the write token.
func api(t *testing.T, method, url string, body any, out any, header ...string) int {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+writeToken)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: %d %s", method, url, resp.StatusCode, raw)
		}
	}
	return resp.StatusCode
}

// browserLog collects what would show as an error or warning in the
// browser's console: calls of console.error and console.warn, uncaught
// exceptions, and the browser's own log (a refused resource, a CSP
// violation, a failed request). The one kind allowed is the 401 of the
// first page load, before the operator has entered a token: that is how
// the console learns it needs one.
type browserLog struct {
	mu       sync.Mutex
	tokenSet bool
	problems []string
	seen     int
}

func (b *browserLog) add(m chromedp.ConsoleMessage) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.seen++
	switch m.Type {
	case chromedp.ConsoleError, chromedp.ConsoleWarning, chromedp.ConsoleException:
	default:
		return
	}
	if !b.tokenSet && m.Source == "network" && strings.Contains(m.Text, "401") {
		return
	}
	b.problems = append(b.problems, fmt.Sprintf("%s %s: %s (%s:%d)", m.Source, m.Type, m.Text, m.URL, m.Line))
}

func (b *browserLog) check(t *testing.T, when string) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range b.problems {
		t.Errorf("%s: %s", when, p)
	}
	b.problems = nil
}

func TestConsoleInBrowser(t *testing.T) {
	browser := chromium(t)
	shots := os.Getenv("WALLET_CONSOLE_SCREENSHOTS")
	if shots == "" {
		shots = t.ArtifactDir()
	} else if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", shots)

	storeDir := t.TempDir()
	p := proctest.Start(t, proctest.Build(t, "github.com/wallet/wallet/cmd/walletd"), []string{
		"--db", dbtest.URL(t),
		"--port", "0",
		"--nats-listen", "127.0.0.1:0",
		"--nats-store-dir", storeDir,
		"--log-format", "json",
		"--auth-tokens", hashFlag(readToken, "read") + "," + hashFlag(writeToken, "write"),
	})
	ready := p.WaitLog("walletd ready", 2*time.Minute)
	base := ready.String("http")
	if !strings.HasPrefix(base, "http://") {
		t.Fatalf("walletd's ready line has no address: %v", ready)
	}

	// Two accounts, the first funded, and a poison message.
	var from, to struct{ ID string }
	api(t, "POST", base+"/v1/accounts", map[string]string{"currency": "USD"}, &from)
	api(t, "POST", base+"/v1/accounts", map[string]string{"currency": "USD"}, &to)
	if code := api(t, "POST", base+"/v1/deposits", map[string]string{
		"id": uuid.NewString(), "account_id": from.ID, "amount": "100", "currency": "USD",
	}, nil, "Prefer", "wait=20"); code != 201 {
		t.Fatalf("deposit: %d", code)
	}
	deadLetter := poison(t, storeDir, ready.String("nats"), base, from.ID)

	// The flags keep a headless browser on a machine without internet
	// from reaching out: no QUIC, no background or component updates, no
	// sync, and a profile of its own.
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(browser),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1366, 768),
	)
	defer cancelAlloc()
	browserCtx, cancelBrowser := chromedp.NewContext(allocCtx)
	defer cancelBrowser()
	// The first call starts the browser and must not carry a timeout.
	if err := chromedp.Do(browserCtx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	logs := &browserLog{}
	messages := chromedp.Console(browserCtx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			logs.add(m)
		}
	}()
	defer func() { cancelBrowser(); <-done }()
	ctx, cancel := context.WithTimeout(browserCtx, 4*time.Minute)
	defer cancel()

	var shot func(name string)
	run := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			shot("failed")
			text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById('main').innerText.slice(0, 2000)`))
			t.Fatalf("%s: %v\nthe page shows:\n%s", what, err, text)
		}
	}
	shot = func(name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(shots, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	eval := func(expr string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
		if err != nil {
			t.Fatalf("evaluate %s: %v", expr, err)
		}
		return v
	}
	noOverflow := func(page string) {
		t.Helper()
		if w := eval(`document.documentElement.scrollWidth + "/" + window.innerWidth`); func() bool {
			var scroll, inner int
			_, _ = fmt.Sscanf(w, "%d/%d", &scroll, &inner)
			return scroll > inner
		}() {
			t.Errorf("%s scrolls sideways (page/viewport width %s)", page, w)
		}
	}
	css := func(sel string) chromedp.CSS { return chromedp.CSS(sel) }

	// Laptop. The first load finds no token, is refused (401) and asks
	// for one; with the write token it shows the overview.
	run("open the console",
		chromedp.EmulateViewport(1366, 768),
		chromedp.Navigate(base+"/console/"),
		chromedp.WaitVisible(css(`#token-input`)),
	)
	logs.mu.Lock()
	logs.tokenSet = true
	logs.mu.Unlock()
	run("enter the token",
		chromedp.SendKeys(css(`#token-input`), writeToken),
		chromedp.Click(css(`#token-form button[type=submit]`)),
		// Every partition is assigned to walletd's worker, the chart has
		// samples after a few refreshes, and the poison message is
		// counted.
		waitJS(`document.querySelectorAll('#partitions .part').length === 32 &&
			[...document.querySelectorAll('#partitions .part')].every(p => p.dataset.owner !== '') &&
			!!document.querySelector('#rate-chart path.series.accepted')`),
		waitJS(`[...document.querySelectorAll('.bar-row .name')].some(e => e.textContent === 'malformed_json')`),
	)
	if stored := eval(`sessionStorage.getItem('wallet.console.token') + '|' + document.cookie + '|' + localStorage.length`); stored != writeToken+"||0" {
		t.Errorf("the token is kept as %q, want it in sessionStorage only", stored)
	}
	shot("desktop-overview")
	logs.check(t, "overview")

	// The account page, and a transfer through its form.
	run("open the account",
		chromedp.Navigate(base+"/console/#/accounts/"+from.ID),
		waitText(`[data-testid=balance]`, "100.00 USD"),
		waitJS(`document.querySelectorAll('#statement tbody tr').length === 1`),
	)
	run("submit a transfer",
		chromedp.SendKeys(css(`[data-testid=move-form] input[name=to]`), to.ID),
		chromedp.SendKeys(css(`[data-testid=move-form] input[name=amount]`), "12.5"),
		chromedp.Click(css(`[data-testid=move-form] button[type=submit]`)),
		waitJS(`!!document.querySelector('[data-testid=move-result] [data-status=applied]')`),
		waitText(`[data-testid=balance]`, "87.50 USD"),
		waitJS(`document.querySelector('#statement tbody tr td.num.debit')?.textContent === '−12.50'`),
	)
	var credited struct{ Balance string }
	api(t, "GET", base+"/v1/accounts/"+to.ID, nil, &credited)
	if credited.Balance != "12.50" {
		t.Errorf("the receiving account has %q after the form's transfer, want 12.50", credited.Balance)
	}
	shot("desktop-account")
	logs.check(t, "account")

	// The transfer page, reached from the form's result.
	run("open the transfer",
		chromedp.Click(css(`[data-testid=move-result] a`)),
		waitText(`[data-testid=transfer] .badge`, "applied"),
		waitJS(`document.querySelectorAll('.card table tbody tr').length === 2`),
	)
	transferID := strings.TrimPrefix(eval(`location.hash`), "#/transfers/")
	var decided struct{ Status, Amount string }
	api(t, "GET", base+"/v1/transfers/"+transferID, nil, &decided)
	if decided.Status != "applied" || decided.Amount != "12.50" {
		t.Errorf("transfer %s: %+v, want applied 12.50", transferID, decided)
	}
	shot("desktop-transfer")
	logs.check(t, "transfer")

	// The dead letters, and the poison message's body.
	run("open the dead letters",
		chromedp.Navigate(base+"/console/#/dead-letters"),
		waitJS(`document.querySelectorAll('[data-testid=dead-letters] tbody tr.clickable').length === 1`),
	)
	shot("desktop-dead-letters")
	run("open the dead letter",
		chromedp.Click(css(`[data-testid=dead-letters] tbody tr.clickable a`)),
		waitText(`[data-testid=dead-letter-body]`, poisonBody),
	)
	if where := eval(`location.hash`); where != fmt.Sprintf("#/dead-letters/%d", deadLetter) {
		t.Errorf("the dead letter opened at %s, want #/dead-letters/%d", where, deadLetter)
	}
	shot("desktop-dead-letter")
	logs.check(t, "dead letters")

	// Phone: every page again, none wider than the screen.
	pages := []struct{ name, hash, ready string }{
		{"overview", "#/overview", `!!document.querySelector('#rate-chart path.series.accepted') && document.querySelectorAll('#partitions .part').length === 32`},
		{"account", "#/accounts/" + from.ID, `document.querySelectorAll('#statement tbody tr').length === 2`},
		{"transfer", "#/transfers/" + transferID, `document.querySelectorAll('.card table tbody tr').length === 2`},
		{"dead-letters", "#/dead-letters", `document.querySelectorAll('[data-testid=dead-letters] tbody tr.clickable').length === 1`},
		{"dead-letter", fmt.Sprintf("#/dead-letters/%d", deadLetter), `!!document.querySelector('[data-testid=dead-letter-body]')`},
	}
	run("phone viewport", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile))
	for _, pg := range pages {
		run("phone "+pg.name,
			chromedp.Navigate(base+"/console/"+pg.hash),
			chromedp.Reload(),
			waitJS(pg.ready),
		)
		noOverflow("phone " + pg.name)
		shot("phone-" + pg.name)
		logs.check(t, "phone "+pg.name)
	}
	logs.mu.Lock()
	t.Logf("%d console messages seen", logs.seen)
	logs.mu.Unlock()
}

// poisonBody is a request cut short: the workers dead-letter it as
// malformed_json.
const poisonBody = `{"v":1,"kind":"transfer","amount":`

// poison publishes poisonBody as a producer would, with the producer
// role's credentials from walletd's store, and returns its dead letter's
// sequence once a worker has stored it.
func poison(t *testing.T, storeDir, natsURL, base, account string) uint64 {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(storeDir, lifecycle.CredentialsFileName))
	if err != nil {
		t.Fatal(err)
	}
	users := map[natsbus.Role]struct{ User, Password string }{}
	if err := json.Unmarshal(raw, &users); err != nil {
		t.Fatal(err)
	}
	u := users[natsbus.RoleProducer]
	nc, err := nats.Connect(natsURL, nats.UserInfo(u.User, u.Password))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if err := nc.Publish(natsbus.RequestsPrefix+account+"."+uuid.NewString(), []byte(poisonBody)); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var page struct {
			Data []struct{ Seq uint64 }
		}
		if code := api(t, "GET", base+"/v1/ops/dead-letters", nil, &page); code == 200 && len(page.Data) == 1 {
			return page.Data[0].Seq
		}
		if time.Now().After(deadline) {
			t.Fatal("the poison message was not dead-lettered")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitJS polls expr in the page until it is true.
func waitJS(expr string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		ctx, cancel := context.WithTimeout(ctx, 45*time.Second)
		defer cancel()
		check := chromedp.Evaluate[bool]("!!(" + expr + ")")
		for {
			ok, err := check(ctx, t)
			if err != nil {
				return err
			}
			if ok {
				return nil
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("waiting for %s: %w", expr, ctx.Err())
			case <-time.After(100 * time.Millisecond):
			}
		}
	})
}

// waitText waits until the element sel holds exactly text.
func waitText(sel, text string) chromedp.Action[chromedp.Void] {
	q, _ := json.Marshal(sel)
	want, _ := json.Marshal(text)
	return waitJS(fmt.Sprintf(`document.querySelector(%s)?.textContent === %s`, q, want))
}
