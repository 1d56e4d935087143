package fault

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// natsServer is a nats-server process with JetStream and its store on
// disk, syncing every write before acknowledging it, as production runs.
// Restarts keep the port and the store.
type natsServer struct {
	*proc
	port    int
	monitor int
	store   string
}

// startNATS writes the server's config and starts it.
func startNATS(t testing.TB, bin binaries, dir string) *natsServer {
	t.Helper()
	s := &natsServer{port: freePort(t), monitor: freePort(t), store: filepath.Join(dir, "jetstream")}
	conf := fmt.Sprintf(`server_name: fault
listen: 127.0.0.1:%d
http: 127.0.0.1:%d
max_payload: 1MB
jetstream {
  store_dir: %q
  sync_interval: always
}
`, s.port, s.monitor, s.store)
	confPath := filepath.Join(dir, "nats.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	s.proc = newProc(t, dir, "nats-server", bin.NATS, []string{"-c", confPath}, nil)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("nats store listing kept in %s", s.keepListing(t))
		}
	})
	if err := s.restart(t.Context()); err != nil {
		t.Fatal(err)
	}
	return s
}

// URL is the client URL.
func (s *natsServer) URL() string { return fmt.Sprintf("nats://127.0.0.1:%d", s.port) }

// restart starts the server if it is down and waits until JetStream
// answers.
func (s *natsServer) restart(ctx context.Context) error {
	if !s.running() {
		if err := s.start(); err != nil {
			return err
		}
	}
	return s.waitReady(ctx)
}

// waitReady polls until a client can connect and JetStream answers.
func (s *natsServer) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var last error
	for {
		if last = s.ping(ctx); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("nats-server not ready: %w", last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (s *natsServer) ping(ctx context.Context) error {
	nc, err := nats.Connect(s.URL(), nats.Timeout(time.Second), nats.NoReconnect())
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err = js.AccountInfo(pctx)
	return err
}

// connect opens a client connection that reconnects forever, closed when
// the test ends.
func (s *natsServer) connect(t testing.TB, name string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(s.URL(),
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(100*time.Millisecond),
		nats.RetryOnFailedConnect(true),
		// Publishes made while disconnected must fail, not queue: a
		// producer only counts a request as accepted on its PubAck.
		nats.ReconnectBufSize(-1),
	)
	if err != nil {
		t.Fatalf("connect to nats: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// keepListing writes the store directory's file listing next to the kept
// logs: which streams and consumers the server had on disk.
func (s *natsServer) keepListing(t testing.TB) string {
	var b strings.Builder
	_ = filepath.WalkDir(s.store, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(s.store, path)
		if info, err := d.Info(); err == nil {
			fmt.Fprintf(&b, "%10d %s %s\n", info.Size(), info.ModTime().UTC().Format("15:04:05.000"), rel)
		}
		return nil
	})
	path := filepath.Join(keptDir(t), "nats-store.txt")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return err.Error()
	}
	return path
}
