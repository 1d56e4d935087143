package deployments

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// minKubernetes is the oldest Kubernetes the manifests are written for: the
// preStop sleep action is on by default from 1.30. The rendered manifests
// are validated against the API schemas of this release, so a field that a
// newer release added fails the test. Kubernetes ships its OpenAPI v3
// documents in its source tree (api/openapi-spec/v3), which the Go module
// proxy serves as the module k8s.io/kubernetes; the test downloads that
// module into the module cache (it is not a dependency of the build).
const minKubernetes = "v1.30.14"

// overlayWithComponents is an overlay using the base and every optional
// component, the widest render there is.
const overlayWithComponents = `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: wallet
resources: [../base]
components: [../base/components/servicemonitor]
images: [{name: wallet, newName: registry.example.com/wallet, newTag: "1.0.0"}]
`

// render runs kustomize, as `kubectl apply -k` does, over the base alone
// and over an overlay with every component, and returns the objects of each.
func render(t *testing.T) map[string][]map[string]any {
	t.Helper()
	mem := filesys.MakeFsInMemory()
	err := filepath.WalkDir(kubeDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(kubeDir, path)
		return mem.WriteFile(filepath.Join("/base", rel), b)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := mem.WriteFile("/overlay/kustomization.yaml", []byte(overlayWithComponents)); err != nil {
		t.Fatal(err)
	}
	out := map[string][]map[string]any{}
	for _, dir := range []string{"/base", "/overlay"} {
		res, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(mem, dir)
		if err != nil {
			t.Fatalf("kustomize build %s: %v", dir, err)
		}
		for _, r := range res.Resources() {
			m, err := r.Map()
			if err != nil {
				t.Fatal(err)
			}
			// Through JSON, so numbers are float64 as the validator expects.
			b, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			var obj map[string]any
			if err := json.Unmarshal(b, &obj); err != nil {
				t.Fatal(err)
			}
			out[dir] = append(out[dir], obj)
		}
	}
	return out
}

// kubeSchemas finds the Kubernetes OpenAPI v3 documents of minKubernetes.
func kubeSchemas(t *testing.T) string {
	t.Helper()
	cmd := exec.Command("go", "mod", "download", "-json", "k8s.io/kubernetes@"+minKubernetes)
	cmd.Dir = t.TempDir() // outside this module: the download changes no go.mod
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
	out, err := cmd.Output()
	var mod struct{ Dir, Error string }
	if jerr := json.Unmarshal(out, &mod); err != nil || jerr != nil || mod.Error != "" {
		t.Fatalf("download the Kubernetes %s API schemas (module k8s.io/kubernetes): %v %s %s", minKubernetes, err, mod.Error, out)
	}
	dir := filepath.Join(mod.Dir, "api", "openapi-spec", "v3")
	if _, err := os.Stat(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

// schemaSet resolves apiVersion and kind to the schema Kubernetes validates
// such an object with.
type schemaSet struct {
	dir  string
	mu   sync.Mutex
	docs map[string]*openapi3.T
}

func (s *schemaSet) lookup(apiVersion, kind string) (*openapi3.Schema, error) {
	group, version, found := strings.Cut(apiVersion, "/")
	file := "apis__" + group + "__" + version + "_openapi.json"
	if !found {
		group, version, file = "", apiVersion, "api__"+apiVersion+"_openapi.json"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	doc, ok := s.docs[file]
	if !ok {
		var err error
		doc, err = openapi3.NewLoader().LoadFromFile(filepath.Join(s.dir, file))
		if err != nil {
			return nil, fmt.Errorf("no schemas for %s in Kubernetes %s: %w", apiVersion, minKubernetes, err)
		}
		strict(doc)
		s.docs[file] = doc
	}
	for _, ref := range doc.Components.Schemas {
		gvks, _ := ref.Value.Extensions["x-kubernetes-group-version-kind"].([]any)
		for _, g := range gvks {
			m, _ := g.(map[string]any)
			if m["group"] == group && m["version"] == version && m["kind"] == kind {
				return ref.Value, nil
			}
		}
	}
	return nil, fmt.Errorf("Kubernetes %s has no %s %s", minKubernetes, apiVersion, kind)
}

// strict forbids properties a schema does not declare, as the API server's
// field validation does (kubectl's default, --validate=strict): a misspelt
// or misplaced field must fail, not be dropped silently.
func strict(doc *openapi3.T) {
	no := false
	seen := map[*openapi3.Schema]bool{}
	var walk func(*openapi3.SchemaRef)
	walk = func(ref *openapi3.SchemaRef) {
		if ref == nil || ref.Value == nil || seen[ref.Value] {
			return
		}
		s := ref.Value
		seen[s] = true
		if len(s.Properties) > 0 && s.AdditionalProperties.Has == nil && s.AdditionalProperties.Schema == nil {
			s.AdditionalProperties.Has = &no
		}
		for _, p := range s.Properties {
			walk(p)
		}
		for _, list := range []openapi3.SchemaRefs{s.AllOf, s.OneOf, s.AnyOf} {
			for _, r := range list {
				walk(r)
			}
		}
		walk(s.Items)
		walk(s.AdditionalProperties.Schema)
	}
	for _, ref := range doc.Components.Schemas {
		walk(ref)
	}
}

// TestManifestsMatchTheKubernetesSchemas renders the base and an overlay
// with every component, and validates each object against the API schema
// of the oldest Kubernetes the manifests support.
func TestManifestsMatchTheKubernetesSchemas(t *testing.T) {
	rendered := render(t)
	schemas := &schemaSet{dir: kubeSchemas(t), docs: map[string]*openapi3.T{}}
	checked := 0
	for dir, objs := range rendered {
		for _, obj := range objs {
			apiVersion, _ := obj["apiVersion"].(string)
			kind, _ := obj["kind"].(string)
			name, _ := obj["metadata"].(map[string]any)["name"].(string)
			where := fmt.Sprintf("%s: %s %s %s", dir, apiVersion, kind, name)
			if apiVersion == "monitoring.coreos.com/v1" && kind == "ServiceMonitor" {
				// A CRD's schema is not Kubernetes's; TestServiceMonitor
				// checks it.
				continue
			}
			schema, err := schemas.lookup(apiVersion, kind)
			if err != nil {
				t.Errorf("%s: %v", where, err)
				continue
			}
			if err := schema.VisitJSON(obj, openapi3.MultiErrors(), openapi3.DisableSchemaErrorDetails()); err != nil {
				t.Errorf("%s does not match the Kubernetes %s schema:\n%v", where, minKubernetes, err)
			}
			checked++
		}
	}
	if checked < 2*len(loadManifests(t)) {
		t.Errorf("validated %d objects; want every object of both renders", checked)
	}
}

// TestSchemaValidationCatchesMistakes makes sure the validation above can
// fail: a misspelt field, a wrong type, a missing required field.
func TestSchemaValidationCatchesMistakes(t *testing.T) {
	schemas := &schemaSet{dir: kubeSchemas(t), docs: map[string]*openapi3.T{}}
	deployment, err := schemas.lookup("apps/v1", "Deployment")
	if err != nil {
		t.Fatal(err)
	}
	var base map[string]any
	for _, obj := range render(t)["/base"] {
		if obj["kind"] == "Deployment" {
			base = obj
		}
	}
	if base == nil {
		t.Fatal("no Deployment rendered")
	}
	if err := deployment.VisitJSON(base); err != nil {
		t.Fatalf("the rendered Deployment itself: %v", err)
	}
	for name, mutate := range map[string]func(spec map[string]any){
		"misspelt field":         func(s map[string]any) { s["replica"] = 2 },
		"string for an integer":  func(s map[string]any) { s["revisionHistoryLimit"] = "5" },
		"no selector (required)": func(s map[string]any) { delete(s, "selector") },
		"container without a name": func(s map[string]any) {
			pod := s["template"].(map[string]any)["spec"].(map[string]any)
			delete(pod["containers"].([]any)[0].(map[string]any), "name")
		},
	} {
		var obj map[string]any
		b, _ := json.Marshal(base)
		_ = json.Unmarshal(b, &obj)
		mutate(obj["spec"].(map[string]any))
		if err := deployment.VisitJSON(obj); err == nil {
			t.Errorf("%s: the schema accepted it", name)
		}
	}
}

// TestServiceMonitor: the optional component's ServiceMonitor selects the
// metrics Service of the gateway and of the workers, each of which has the
// endpoint's port and sends it to the pods' "metrics" container port.
func TestServiceMonitor(t *testing.T) {
	var objs []object
	for _, m := range render(t)["/overlay"] {
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		var o object
		if err := json.Unmarshal(b, &o); err != nil {
			t.Fatal(err)
		}
		objs = append(objs, o)
	}
	sm, ok := find(objs, "ServiceMonitor", "wallet")
	if !ok {
		t.Fatal("the overlay with the servicemonitor component renders no ServiceMonitor wallet")
	}
	var s struct {
		Selector struct {
			MatchLabels map[string]string `json:"matchLabels"`
		} `json:"selector"`
		Endpoints []struct {
			Port string `json:"port"`
			Path string `json:"path"`
		} `json:"endpoints"`
	}
	if err := json.Unmarshal(sm.Spec, &s); err != nil {
		t.Fatal(err)
	}
	if len(s.Endpoints) != 1 || s.Endpoints[0].Port != "metrics" || s.Endpoints[0].Path != "/metrics" {
		t.Fatalf("endpoints %+v, want port metrics, path /metrics", s.Endpoints)
	}
	scraped := map[string]bool{}
	for _, svc := range objs {
		if svc.Kind != "Service" || len(s.Selector.MatchLabels) == 0 || !maps(s.Selector.MatchLabels, svc.Metadata.Labels) {
			continue
		}
		ss := spec[serviceSpec](t, svc)
		for _, d := range objs {
			if d.Kind != "Deployment" {
				continue
			}
			w := spec[workloadSpec](t, d)
			if !maps(ss.Selector, w.Template.Metadata.Labels) {
				continue
			}
			c := w.Template.Spec.Containers[0]
			for _, p := range ss.Ports {
				if p.Name == "metrics" && portNumber(t, svc.Metadata.Name, p.TargetPort, c) == portNumber(t, d.Metadata.Name, json.RawMessage(`"metrics"`), c) {
					scraped[d.Metadata.Name] = true
				}
			}
		}
	}
	for _, name := range []string{"wallet-gateway", "wallet-worker"} {
		if !scraped[name] {
			t.Errorf("the ServiceMonitor scrapes no metrics port of %s (selector %v)", name, s.Selector.MatchLabels)
		}
	}
}
