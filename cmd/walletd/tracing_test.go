package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/wallet/wallet/internal/dbtest"
)

// collector is a fake OTLP/HTTP collector: it keeps what it is sent.
type collector struct {
	mu       sync.Mutex
	paths    []string
	requests []*coltracepb.ExportTraceServiceRequest
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	req := &coltracepb.ExportTraceServiceRequest{}
	if err == nil {
		err = proto.Unmarshal(body, req)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	c.paths = append(c.paths, r.Method+" "+r.URL.Path+" "+r.Header.Get("Content-Type"))
	c.requests = append(c.requests, req)
	c.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(nil)
}

// TestTracingExport runs walletd with --otel-endpoint and checks that one
// transfer's spans, from the HTTP request to the outcome, reach the
// collector over OTLP/HTTP under the service name walletd, flushed by the
// graceful stop.
func TestTracingExport(t *testing.T) {
	t.Parallel()
	col := &collector{}
	srv := httptest.NewServer(col)
	defer srv.Close()

	w := startWalletd(t, dbtest.URL(t), t.TempDir(), "--otel-endpoint", srv.URL)
	if on := w.Lines("tracing on"); len(on) != 1 || on[0].String("otel_endpoint") != srv.URL {
		t.Fatalf("no \"tracing on\" line naming the endpoint: %v", on)
	}
	accounts := fund(t, w.http, 2, "10")
	body := map[string]string{"id": uuid.NewString(), "from_account_id": accounts[0], "to_account_id": accounts[1], "amount": "3", "currency": "USD"}
	if code, err := call("POST", w.http+"/v1/transfers", body, nil, "Prefer", "wait=20"); err != nil || code != 201 {
		t.Fatalf("transfer: %d %v", code, err)
	}
	w.Signal(syscall.SIGTERM)
	if code := w.Wait(shutdownTimeout + 10*time.Second); code != 0 {
		t.Fatalf("exit status %d", code)
	}

	col.mu.Lock()
	defer col.mu.Unlock()
	if len(col.requests) == 0 {
		t.Fatal("the collector received nothing")
	}
	for _, p := range col.paths {
		if p != "POST /v1/traces application/x-protobuf" {
			t.Errorf("export %q, want POST /v1/traces as protobuf", p)
		}
	}
	names := map[string]int{}
	services := map[string]bool{}
	for _, req := range col.requests {
		for _, rs := range req.ResourceSpans {
			for _, kv := range rs.GetResource().GetAttributes() {
				if kv.Key == "service.name" {
					services[kv.GetValue().GetStringValue()] = true
				}
			}
			for _, ss := range rs.ScopeSpans {
				for _, sp := range ss.Spans {
					names[sp.Name]++
				}
			}
		}
	}
	if len(services) != 1 || !services["walletd"] {
		t.Errorf("service names %v, want walletd", services)
	}
	for _, name := range []string{"POST /v1/transfers", "send wallet.requests", "process batch", "ApplyBatch",
		"process wallet.requests", "send wallet.results"} {
		if names[name] == 0 {
			t.Errorf("no %q span exported; got %v", name, names)
		}
	}
}
