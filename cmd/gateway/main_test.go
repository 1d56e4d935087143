package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/wallet/wallet/internal/dbtest"
	"github.com/wallet/wallet/internal/gateway"
	"github.com/wallet/wallet/internal/natstest"
	"github.com/wallet/wallet/internal/proctest"
)

func TestMain(m *testing.M) { proctest.Main(m) }

const pkg = "github.com/wallet/wallet/cmd/gateway"

func do(t *testing.T, method, url, token string, body any) (int, map[string]any) {
	t.Helper()
	var buf bytes.Buffer
	if body != nil {
		if err := json.NewEncoder(&buf).Encode(body); err != nil {
			t.Fatal(err)
		}
	}
	req, err := http.NewRequest(method, url, &buf)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// TestGatewayBinary runs cmd/gateway with bearer tokens configured through
// the environment, checks the probes and the token scopes, submits a
// deposit that stays pending (no worker runs), and stops it with SIGHUP.
func TestGatewayBinary(t *testing.T) {
	t.Parallel()
	ns := natstest.Start(t)
	db := dbtest.URL(t)
	const readToken, writeToken = "read-token-for-tests", "write-token-for-tests"
	tokens := gateway.HashToken(readToken, gateway.ScopeRead) + "," + gateway.HashToken(writeToken, gateway.ScopeWrite)

	metricsPort := freePort(t)
	p := proctest.Start(t, proctest.Build(t, pkg), []string{"--port", "0", "--log-format", "json", "--metrics-port", strconv.Itoa(metricsPort)},
		"WALLET_DB="+db, "WALLET_NATS_URL="+ns.URL(), "WALLET_AUTH_TOKENS="+tokens, "WALLET_SHUTDOWN_TIMEOUT=10s")
	ready := p.WaitLog("gateway ready", 2*time.Minute)
	base := "http://127.0.0.1:" + ready.String("port")
	if _, err := strconv.Atoi(ready.String("port")); err != nil {
		t.Fatalf("ready line: %v", ready)
	}

	// The image has no shell: the binary checks itself for Compose.
	if out, err := healthcheck(t, "--port", ready.String("port")); err != nil {
		t.Errorf("gateway healthcheck on a ready gateway: %v %s", err, out)
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if code, _ := do(t, "GET", base+path, "", nil); code != 200 {
			t.Errorf("%s without a token: %d", path, code)
		}
	}
	if code, _ := do(t, "GET", base+"/metrics", "", nil); code != 401 {
		t.Errorf("/metrics without a token: %d, want 401", code)
	}
	if code, _ := do(t, "GET", base+"/metrics", readToken, nil); code != 200 {
		t.Errorf("/metrics with a read token: %d, want 200", code)
	}
	// The operations listener serves metrics and probes without a token,
	// on a port that is not the API's.
	ops := "http://127.0.0.1:" + strconv.Itoa(metricsPort)
	for _, path := range []string{"/metrics", "/healthz", "/readyz"} {
		resp, err := http.Get(ops + path)
		if err != nil {
			t.Fatalf("%s on the metrics port: %v", path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || (path == "/metrics" && !strings.Contains(string(body), "wallet_gateway_http_request_duration_seconds")) {
			t.Errorf("%s on the metrics port: %d %.200s", path, resp.StatusCode, body)
		}
	}
	if code, _ := do(t, "GET", base+"/v1/currencies", "", nil); code != 401 {
		t.Errorf("no token: %d, want 401", code)
	}
	if code, _ := do(t, "GET", base+"/v1/currencies", readToken, nil); code != 200 {
		t.Errorf("read token: %d, want 200", code)
	}
	if code, _ := do(t, "POST", base+"/v1/accounts", readToken, map[string]string{"currency": "USD"}); code != 403 {
		t.Errorf("read token creating an account: %d, want 403", code)
	}
	code, acc := do(t, "POST", base+"/v1/accounts", writeToken, map[string]string{"currency": "USD"})
	if code != 201 {
		t.Fatalf("create account: %d %v", code, acc)
	}
	id := uuid.NewString()
	code, dep := do(t, "POST", base+"/v1/deposits", writeToken, map[string]string{
		"id": id, "account_id": acc["id"].(string), "amount": "5", "currency": "USD"})
	if code != 202 {
		t.Fatalf("deposit: %d %v", code, dep)
	}
	if code, tr := do(t, "GET", base+"/v1/transfers/"+id, readToken, nil); code != 200 || tr["status"] != "pending" {
		t.Errorf("deposit status: %d %v, want pending", code, tr)
	}
	for _, l := range p.Stderr() {
		if strings.Contains(l, readToken) || strings.Contains(l, writeToken) {
			t.Fatalf("a token reached the log: %s", l)
		}
	}

	p.Signal(syscall.SIGHUP)
	if code := p.Wait(15 * time.Second); code != 0 {
		t.Fatalf("exit status %d after SIGHUP", code)
	}
	if out, err := healthcheck(t, "--port", ready.String("port")); err == nil {
		t.Errorf("gateway healthcheck passed on a stopped gateway: %s", out)
	}
}

// healthcheck runs the binary's healthcheck subcommand with args and an
// empty environment.
func healthcheck(t *testing.T, args ...string) ([]byte, error) {
	t.Helper()
	cmd := exec.Command(proctest.Build(t, pkg), append([]string{"healthcheck"}, args...)...)
	cmd.Env = []string{}
	return cmd.CombinedOutput()
}

// TestNoAuthNeedsLoopbackOrConsent: without tokens the gateway refuses to
// start on every interface (exit status 2, naming the way out); on
// loopback it starts and warns that authentication is off.
func TestNoAuthNeedsLoopbackOrConsent(t *testing.T) {
	t.Parallel()
	ns := natstest.Start(t)
	db := dbtest.URL(t)
	bin := proctest.Build(t, pkg)
	env := []string{"WALLET_DB=" + db, "WALLET_NATS_URL=" + ns.URL()}

	refused := proctest.Start(t, bin, []string{"--port", "0", "--log-format", "json"}, env...)
	if code := refused.Wait(time.Minute); code != 2 {
		t.Fatalf("exit status %d without tokens on every interface, want 2", code)
	}
	if out := strings.Join(refused.Stderr(), "\n"); !strings.Contains(out, "--insecure-no-auth") {
		t.Fatalf("the refusal does not say how to proceed:\n%s", out)
	}

	for _, args := range [][]string{{"--host", "127.0.0.1"}, {"--insecure-no-auth"}} {
		p := proctest.Start(t, bin, append([]string{"--port", "0", "--log-format", "json"}, args...), env...)
		p.WaitLog("gateway ready", 2*time.Minute)
		if len(p.Lines("AUTHENTICATION IS OFF: every request to the HTTP API is accepted, writes included; set --auth-tokens")) != 1 {
			t.Errorf("%v: no warning that authentication is off", args)
		}
		p.Signal(syscall.SIGTERM)
		if code := p.Wait(15 * time.Second); code != 0 {
			t.Fatalf("%v: exit status %d", args, code)
		}
	}
}

// freePort asks the kernel for a port that is free now.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
