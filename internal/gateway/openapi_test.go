package gateway

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// TestRoutesDocumented checks that the OpenAPI document and docs/api.md
// describe exactly the registered routes.
func TestRoutesDocumented(t *testing.T) {
	t.Parallel()
	g, err := New(Config{}, nil, nil, zap.NewNop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi version %q", doc.OpenAPI)
	}
	guide, err := os.ReadFile("../../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	param := regexp.MustCompile(`:([a-z_]+)`)
	registered := map[string]bool{}
	for _, r := range g.App().GetRoutes(true) {
		if r.Method == "HEAD" { // Fiber adds HEAD to every GET
			continue
		}
		path := param.ReplaceAllString(r.Path, "{$1}")
		key := strings.ToLower(r.Method) + " " + path
		registered[key] = true
		if _, ok := doc.Paths[path][strings.ToLower(r.Method)]; !ok {
			t.Errorf("%s %s is not in openapi.json", r.Method, path)
		}
		if !strings.Contains(string(guide), "`"+r.Method+" "+path+"`") {
			t.Errorf("%s %s is not in docs/api.md", r.Method, path)
		}
	}
	for path, ops := range doc.Paths {
		for method := range ops {
			if !registered[method+" "+path] {
				t.Errorf("openapi.json documents %s %s, which is not registered", method, path)
			}
		}
	}
}

// TestCodesDocumented checks that every code the gateway can answer with
// is explained in docs/api.md.
func TestCodesDocumented(t *testing.T) {
	t.Parallel()
	guide, err := os.ReadFile("../../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("problem.go")
	if err != nil {
		t.Fatal(err)
	}
	codes := regexp.MustCompile(`transfer\.Code = "([a-z_]+)"`).FindAllStringSubmatch(string(src), -1)
	domain, err := os.ReadFile("../transfer/errors.go")
	if err != nil {
		t.Fatal(err)
	}
	codes = append(codes, regexp.MustCompile(`Code = "([a-z_]+)"`).FindAllStringSubmatch(string(domain), -1)...)
	if len(codes) < 20 {
		t.Fatalf("found only %d codes", len(codes))
	}
	for _, c := range codes {
		if !strings.Contains(string(guide), "`"+c[1]+"`") {
			t.Errorf("code %s is not in docs/api.md", c[1])
		}
	}
}
