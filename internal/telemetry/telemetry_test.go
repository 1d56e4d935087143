package telemetry

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

func TestTracesURL(t *testing.T) {
	cases := map[string]string{
		"http://collector:4318":            "http://collector:4318/v1/traces",
		"http://collector:4318/":           "http://collector:4318/v1/traces",
		"https://otel.example/custom/path": "https://otel.example/custom/path",
	}
	for in, want := range cases {
		if got, err := tracesURL(in); err != nil || got != want {
			t.Errorf("tracesURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"collector:4318", "grpc://collector:4317", "http://", "::"} {
		if got, err := tracesURL(bad); err == nil {
			t.Errorf("tracesURL(%q) = %q, want an error", bad, got)
		}
	}
}

// TestStartExportsOverHTTP checks that spans reach an OTLP/HTTP collector
// at the configured endpoint, as protobuf on /v1/traces, under the
// process's service name.
func TestStartExportsOverHTTP(t *testing.T) {
	type request struct {
		method, path, contentType string
		body                      []byte
	}
	got := make(chan request, 4)
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		once.Do(func() { got <- request{r.Method, r.URL.Path, r.Header.Get("Content-Type"), body} })
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tp, err := Start(ctx, srv.URL, "wallet-test", "v9.9.9")
	if err != nil {
		t.Fatal(err)
	}
	_, span := tp.Tracer("test").Start(ctx, "a-span-name")
	span.End()
	if err := tp.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown (flush): %v", err)
	}
	select {
	case r := <-got:
		if r.method != http.MethodPost || r.path != TracesPath || r.contentType != "application/x-protobuf" {
			t.Fatalf("export %s %s (%s), want POST %s protobuf", r.method, r.path, r.contentType, TracesPath)
		}
		for _, want := range []string{"a-span-name", "wallet-test", "v9.9.9"} {
			if !bytes.Contains(r.body, []byte(want)) {
				t.Errorf("exported body has no %q", want)
			}
		}
	default:
		t.Fatal("nothing was exported")
	}
}
