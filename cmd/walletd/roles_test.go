package main

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"

	"github.com/wallet/wallet/internal/dbtest"
	"github.com/wallet/wallet/internal/lifecycle"
	"github.com/wallet/wallet/internal/natsbus"
)

// storedUsers reads the embedded server's credentials file and checks that
// only its owner may read it.
func storedUsers(t *testing.T, storeDir string) map[natsbus.Role]struct{ User, Password string } {
	t.Helper()
	path := filepath.Join(storeDir, lifecycle.CredentialsFileName)
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", path, st.Mode().Perm())
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	users := map[natsbus.Role]struct{ User, Password string }{}
	if err := json.Unmarshal(raw, &users); err != nil {
		t.Fatal(err)
	}
	for _, r := range natsbus.Roles {
		if users[r].User != r.UserName() || len(users[r].Password) < 32 {
			t.Fatalf("credentials file: role %s has %+v", r, users[r])
		}
	}
	return users
}

// checkSecretsKept fails the test if walletd printed or logged the
// gateway's or the worker's password, or was refused anything by its own
// server.
func checkSecretsKept(t *testing.T, w *walletd, users map[natsbus.Role]struct{ User, Password string }) {
	t.Helper()
	out := w.Stdout() + strings.Join(w.Stderr(), "\n")
	for _, r := range []natsbus.Role{natsbus.RoleGateway, natsbus.RoleWorker} {
		if strings.Contains(out, users[r].Password) {
			t.Errorf("the %s password appears in walletd's output", r)
		}
	}
	if strings.Contains(strings.ToLower(out), "permissions violation") {
		t.Errorf("walletd's own connections were refused something:\n%s", out)
	}
}

// denied publishes to subject on nc and waits for the server to refuse it.
func denied(t *testing.T, nc *nats.Conn, errs <-chan error, subject string) {
	t.Helper()
	if err := nc.Publish(subject, []byte("forged")); err != nil {
		t.Fatal(err)
	}
	timeout := time.After(10 * time.Second)
	for {
		select {
		case err := <-errs:
			if errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), `"`+subject+`"`) {
				return
			}
		case <-timeout:
			t.Fatalf("publishing to %s was not refused", subject)
		}
	}
}

func errorChan(errs chan error) nats.Option {
	return nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err })
}

// TestLoopbackNATSRoles: on loopback the embedded server takes clients
// without credentials as producers, as local tools expect, and they may not
// forge an outcome or a worker.
func TestLoopbackNATSRoles(t *testing.T) {
	t.Parallel()
	storeDir := t.TempDir()
	w := startWalletd(t, dbtest.URL(t), storeDir)
	users := storedUsers(t, storeDir)
	if !strings.Contains(w.Stdout(), "without credentials") || strings.Contains(w.Stdout(), users[natsbus.RoleProducer].Password) {
		t.Errorf("the banner should tell local producers to connect without credentials:\n%s", w.Stdout())
	}
	errs := make(chan error, 16)
	nc, err := nats.Connect(w.nats, errorChan(errs))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	denied(t, nc, errs, natsbus.ResultSubject(uuid.New()))
	denied(t, nc, errs, "$KV."+natsbus.MembersBucket+".fake-worker")
	// Money still moves through the gateway and the workers' own roles.
	fund(t, w.http, 2, "5")
	checkSecretsKept(t, w, users)
}

// TestPublicNATSNeedsCredentials: listening beyond loopback, the embedded
// server refuses clients without credentials; the banner prints the
// producer's, which can submit a request and read its outcome, and only
// that. An HTTP transfer still goes through the gateway and the workers.
func TestPublicNATSNeedsCredentials(t *testing.T) {
	t.Parallel()
	storeDir := t.TempDir()
	w := startWalletd(t, dbtest.URL(t), storeDir, "--nats-listen", "0.0.0.0:0")
	users := storedUsers(t, storeDir)
	m := regexp.MustCompile(`producers\s+user (\S+), password (\S+)`).FindStringSubmatch(w.Stdout())
	if m == nil {
		t.Fatalf("the banner does not say how a producer connects:\n%s", w.Stdout())
	}
	producer := users[natsbus.RoleProducer]
	if m[1] != producer.User || m[2] != producer.Password {
		t.Fatalf("banner shows %s/%s, the credentials file %s", m[1], m[2], producer.User)
	}
	if nc, err := nats.Connect(w.nats); err == nil {
		nc.Close()
		t.Fatal("a client without credentials was accepted")
	} else if !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("connect without credentials: %v, want an authorization error", err)
	}

	accounts := fund(t, w.http, 2, "10")
	body := map[string]string{"id": uuid.NewString(), "from_account_id": accounts[0], "to_account_id": accounts[1], "amount": "4", "currency": "USD"}
	if code, err := call("POST", w.http+"/v1/transfers", body, nil, "Prefer", "wait=20"); err != nil || code != 201 {
		t.Fatalf("transfer through the gateway: %d %v", code, err)
	}

	errs := make(chan error, 16)
	nc, err := nats.Connect(w.nats, nats.UserInfo(m[1], m[2]), errorChan(errs))
	if err != nil {
		t.Fatalf("connect as the producer: %v", err)
	}
	defer nc.Close()
	id := uuid.New()
	outcome, err := nc.SubscribeSync(natsbus.ResultSubject(id))
	if err != nil {
		t.Fatal(err)
	}
	deposit := nats.NewMsg("wallet.requests." + accounts[0] + "." + id.String())
	deposit.Header.Set(natsbus.HeaderMsgID, id.String())
	deposit.Data = []byte(`{"v":1,"kind":"deposit","id":"` + id.String() + `","account_id":"` + accounts[0] + `","amount":"2.50","currency":"USD"}`)
	if _, err := nc.RequestMsg(deposit, 10*time.Second); err != nil {
		t.Fatalf("publish a deposit as the producer: %v", err)
	}
	res, err := outcome.NextMsg(30 * time.Second)
	if err != nil {
		t.Fatalf("the deposit's outcome: %v", err)
	}
	if r, err := natsbus.DecodeResult(res.Data); err != nil || r.Status != "applied" {
		t.Fatalf("outcome %s: %v", res.Data, err)
	}
	denied(t, nc, errs, natsbus.ResultSubject(uuid.New()))
	denied(t, nc, errs, "$JS.API.STREAM.PURGE."+natsbus.RequestsStream)
	checkSecretsKept(t, w, users)
}
