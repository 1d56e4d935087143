package deployments

import (
	"encoding/json"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/wallet/wallet/internal/config"
	"github.com/wallet/wallet/internal/gateway"
)

// The structs below read only the fields the checks need.

type object struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name   string            `json:"name"`
		Labels map[string]string `json:"labels"`
	} `json:"metadata"`
	Data       map[string]string `json:"data"`
	StringData map[string]string `json:"stringData"`
	Spec       json.RawMessage   `json:"spec"`

	file string
}

type workloadSpec struct {
	Replicas *int `json:"replicas"`
	Selector struct {
		MatchLabels map[string]string `json:"matchLabels"`
	} `json:"selector"`
	Template struct {
		Metadata struct {
			Labels      map[string]string `json:"labels"`
			Annotations map[string]string `json:"annotations"`
		} `json:"metadata"`
		Spec podSpec `json:"spec"`
	} `json:"template"`
}

type podSpec struct {
	TerminationGracePeriodSeconds *int64 `json:"terminationGracePeriodSeconds"`
	RestartPolicy                 string `json:"restartPolicy"`
	SecurityContext               struct {
		RunAsNonRoot *bool `json:"runAsNonRoot"`
	} `json:"securityContext"`
	InitContainers []container `json:"initContainers"`
	Containers     []container `json:"containers"`
}

type container struct {
	Name    string   `json:"name"`
	Image   string   `json:"image"`
	Command []string `json:"command"`
	Ports   []struct {
		Name          string `json:"name"`
		ContainerPort int    `json:"containerPort"`
	} `json:"ports"`
	Env []struct {
		Name      string `json:"name"`
		Value     string `json:"value"`
		ValueFrom *struct {
			SecretKeyRef *secretKeyRef `json:"secretKeyRef"`
		} `json:"valueFrom"`
	} `json:"env"`
	EnvFrom []struct {
		ConfigMapRef *struct {
			Name string `json:"name"`
		} `json:"configMapRef"`
		SecretRef *struct {
			Name string `json:"name"`
		} `json:"secretRef"`
	} `json:"envFrom"`
	StartupProbe   *probe `json:"startupProbe"`
	LivenessProbe  *probe `json:"livenessProbe"`
	ReadinessProbe *probe `json:"readinessProbe"`
	Lifecycle      *struct {
		PreStop *struct {
			Sleep *struct {
				Seconds int `json:"seconds"`
			} `json:"sleep"`
		} `json:"preStop"`
	} `json:"lifecycle"`
	Resources struct {
		Requests map[string]string `json:"requests"`
	} `json:"resources"`
	SecurityContext struct {
		AllowPrivilegeEscalation *bool `json:"allowPrivilegeEscalation"`
		ReadOnlyRootFilesystem   *bool `json:"readOnlyRootFilesystem"`
	} `json:"securityContext"`
}

type secretKeyRef struct {
	Name string `json:"name"`
	Key  string `json:"key"`
}

type probe struct {
	HTTPGet *struct {
		Path string          `json:"path"`
		Port json.RawMessage `json:"port"`
	} `json:"httpGet"`
}

type serviceSpec struct {
	Selector map[string]string `json:"selector"`
	Ports    []struct {
		Name       string          `json:"name"`
		Port       int             `json:"port"`
		TargetPort json.RawMessage `json:"targetPort"`
	} `json:"ports"`
}

type hpaSpec struct {
	ScaleTargetRef struct {
		Kind string `json:"kind"`
		Name string `json:"name"`
	} `json:"scaleTargetRef"`
	MinReplicas int `json:"minReplicas"`
	MaxReplicas int `json:"maxReplicas"`
}

type pdbSpec struct {
	MinAvailable   json.RawMessage `json:"minAvailable"`
	MaxUnavailable json.RawMessage `json:"maxUnavailable"`
	Selector       struct {
		MatchLabels map[string]string `json:"matchLabels"`
	} `json:"selector"`
}

const kubeDir = "kubernetes"

var docSeparator = regexp.MustCompile(`(?m)^---\s*$`)

// loadManifests parses every YAML file in the kustomize base.
func loadManifests(t *testing.T) []object {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(kubeDir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in %s: %v", kubeDir, err)
	}
	var out []object
	for _, f := range files {
		if filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range docSeparator.Split(string(raw), -1) {
			if strings.TrimSpace(doc) == "" {
				continue
			}
			var o object
			if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if o.APIVersion == "" || o.Kind == "" || o.Metadata.Name == "" {
				t.Fatalf("%s: a document lacks apiVersion, kind or metadata.name", f)
			}
			o.file = filepath.Base(f)
			out = append(out, o)
		}
	}
	return out
}

func spec[T any](t *testing.T, o object) T {
	t.Helper()
	var s T
	if err := json.Unmarshal(o.Spec, &s); err != nil {
		t.Fatalf("%s %s: spec: %v", o.Kind, o.Metadata.Name, err)
	}
	return s
}

func find(objs []object, kind, name string) (object, bool) {
	for _, o := range objs {
		if o.Kind == kind && o.Metadata.Name == name {
			return o, true
		}
	}
	return object{}, false
}

// programOf names the program a container runs, from its command.
func programOf(t *testing.T, where string, cmd []string) config.Program {
	t.Helper()
	if len(cmd) == 0 {
		t.Fatalf("%s: no command: the image runs several programs, name one", where)
	}
	p := config.Program(path.Base(cmd[0]))
	if !slices.Contains(config.Programs, p) {
		t.Fatalf("%s: command %q is none of the programs %v", where, cmd[0], config.Programs)
	}
	return p
}

func isSetting(p config.Program, env string) bool {
	for _, s := range config.Settings(p) {
		if s.Env == env {
			return true
		}
	}
	return false
}

// containerEnv is the environment a container sees, from its envFrom
// sources and its own env entries.
func containerEnv(t *testing.T, objs []object, where string, c container) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, from := range c.EnvFrom {
		switch {
		case from.ConfigMapRef != nil:
			cm, ok := find(objs, "ConfigMap", from.ConfigMapRef.Name)
			if !ok {
				t.Fatalf("%s: ConfigMap %q is not in the base", where, from.ConfigMapRef.Name)
			}
			for k, v := range cm.Data {
				env[k] = v
			}
		case from.SecretRef != nil:
			s, ok := find(objs, "Secret", from.SecretRef.Name)
			if !ok {
				t.Fatalf("%s: Secret %q is not in the base", where, from.SecretRef.Name)
			}
			for k, v := range s.StringData {
				env[k] = v
			}
		}
	}
	for _, e := range c.Env {
		env[e.Name] = e.Value
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			ref := e.ValueFrom.SecretKeyRef
			s, ok := find(objs, "Secret", ref.Name)
			if !ok {
				t.Fatalf("%s: env %s: Secret %q is not in the base", where, e.Name, ref.Name)
			}
			v, ok := s.StringData[ref.Key]
			if !ok {
				t.Fatalf("%s: env %s: Secret %s has no key %q", where, e.Name, ref.Name, ref.Key)
			}
			env[e.Name] = v
		}
	}
	return env
}

// loadConfig runs the program's own configuration loader over env, so a
// manifest value the program would reject fails here.
func loadConfig(t *testing.T, where string, p config.Program, env map[string]string) *config.Config {
	t.Helper()
	cfg, err := config.Load(p, nil, func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	})
	if err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	return cfg
}

// gatewayAuth checks that the shipped gateway cannot run without
// authentication by accident: the base sets no WALLET_AUTH_TOKENS (an empty
// value would read as "auth off") and, as shipped, the gateway refuses to
// start until an overlay provides tokens. It returns env with a token, as an
// overlay would set it, for the checks that follow.
func gatewayAuth(t *testing.T, where string, env map[string]string) map[string]string {
	t.Helper()
	if v, ok := env["WALLET_AUTH_TOKENS"]; ok && strings.TrimSpace(v) == "" {
		t.Errorf("%s: WALLET_AUTH_TOKENS is set but empty, which turns authentication off", where)
	}
	if env["WALLET_INSECURE_NO_AUTH"] != "" {
		t.Errorf("%s: the shipped gateway must not opt out of authentication", where)
	}
	if _, ok := env["WALLET_AUTH_TOKENS"]; !ok {
		_, err := config.Load(config.Gateway, nil, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
		if err == nil || !strings.Contains(err.Error(), "auth-tokens") {
			t.Errorf("%s: without tokens the gateway must refuse to start, got %v", where, err)
		}
	}
	out := map[string]string{}
	for k, v := range env {
		out[k] = v
	}
	out["WALLET_AUTH_TOKENS"] = gateway.HashToken("overlay-token", gateway.ScopeWrite)
	return out
}

// portNumber resolves a probe's or service's port (a number or a name).
func portNumber(t *testing.T, where string, raw json.RawMessage, c container) int {
	t.Helper()
	var n int
	if err := json.Unmarshal(raw, &n); err == nil {
		return n
	}
	var name string
	if err := json.Unmarshal(raw, &name); err != nil {
		t.Fatalf("%s: port %s is neither a number nor a name", where, raw)
	}
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	t.Fatalf("%s: port name %q is not declared by container %s", where, name, c.Name)
	return 0
}

func TestKustomizationListsEveryManifest(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(kubeDir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k struct {
		Kind      string   `json:"kind"`
		Resources []string `json:"resources"`
	}
	if err := yaml.Unmarshal(raw, &k); err != nil {
		t.Fatal(err)
	}
	if k.Kind != "Kustomization" {
		t.Fatalf("kind %q", k.Kind)
	}
	files, _ := filepath.Glob(filepath.Join(kubeDir, "*.yaml"))
	var want []string
	for _, f := range files {
		if b := filepath.Base(f); b != "kustomization.yaml" {
			want = append(want, b)
		}
	}
	got := slices.Clone(k.Resources)
	sort.Strings(got)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Errorf("kustomization resources %v, files %v", got, want)
	}
}

func TestWorkloads(t *testing.T) {
	objs := loadManifests(t)
	kinds := map[string]int{}
	for _, o := range objs {
		kinds[o.Kind]++
	}
	for kind, n := range map[string]int{"Deployment": 2, "Job": 0, "Service": 3, "HorizontalPodAutoscaler": 1, "PodDisruptionBudget": 2, "ConfigMap": 1, "Secret": 2, "NetworkPolicy": 2} {
		if kinds[kind] != n {
			t.Errorf("%d %s objects, want %d", kinds[kind], kind, n)
		}
	}

	seen := map[config.Program]bool{}
	for _, o := range objs {
		if o.Kind != "Deployment" {
			continue
		}
		w := spec[workloadSpec](t, o)
		pod := w.Template.Spec
		if pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot {
			t.Errorf("%s: pods must run as non-root", o.Metadata.Name)
		}
		if len(pod.Containers) != 1 {
			t.Fatalf("%s: %d containers, want 1", o.Metadata.Name, len(pod.Containers))
		}
		// The schema migration runs before the service in every pod (there
		// is no Job to re-apply): see README.md, "Migrations".
		if len(pod.InitContainers) != 1 {
			t.Fatalf("%s: %d init containers, want the migration", o.Metadata.Name, len(pod.InitContainers))
		}
		init := pod.InitContainers[0]
		if p, _ := checkContainer(t, objs, o.Kind+" "+o.Metadata.Name+" init container "+init.Name, init); p != config.Migrate {
			t.Errorf("%s: init container runs %s, want migrate", o.Metadata.Name, p)
		} else {
			seen[p] = true
		}

		c := pod.Containers[0]
		where := o.Kind + " " + o.Metadata.Name
		p, cfg := checkContainer(t, objs, where, c)
		seen[p] = true
		env := containerEnv(t, objs, where, c)

		// Metrics are served on a port of their own, named "metrics", whose
		// number is the metrics-port setting the container sees.
		metricsEnv := config.EnvName("metrics-port")
		wantMetrics, err := strconv.Atoi(env[metricsEnv])
		if err != nil {
			t.Errorf("%s: %s is %q; the metrics port needs a number", where, metricsEnv, env[metricsEnv])
		}
		if got := portNumber(t, where, json.RawMessage(`"metrics"`), c); got != wantMetrics {
			t.Errorf("%s: port \"metrics\" is %d, %s is %d", where, got, metricsEnv, wantMetrics)
		}
		if cfg.MetricsPort != wantMetrics {
			t.Errorf("%s: %s serves metrics on %d, the port says %d", where, p, cfg.MetricsPort, wantMetrics)
		}
		if got := w.Template.Metadata.Annotations["prometheus.io/port"]; got != strconv.Itoa(wantMetrics) {
			t.Errorf("%s: prometheus.io/port annotation %q, want the metrics port %d", where, got, wantMetrics)
		}

		if !maps(w.Selector.MatchLabels, w.Template.Metadata.Labels) {
			t.Errorf("%s: selector %v does not match the pod labels %v", where, w.Selector.MatchLabels, w.Template.Metadata.Labels)
		}
		var wantPort int
		switch p {
		case config.Gateway:
			wantPort = cfg.Port
		case config.Worker:
			wantPort = cfg.MetricsPort
		default:
			t.Fatalf("%s: %s is not meant to run as a Deployment", where, p)
		}
		for _, pr := range []struct {
			name  string
			probe *probe
			path  string
		}{
			{"livenessProbe", c.LivenessProbe, "/healthz"},
			{"readinessProbe", c.ReadinessProbe, "/readyz"},
		} {
			if pr.probe == nil || pr.probe.HTTPGet == nil {
				t.Errorf("%s: no HTTP %s", where, pr.name)
				continue
			}
			if pr.probe.HTTPGet.Path != pr.path {
				t.Errorf("%s: %s path %q, want %q", where, pr.name, pr.probe.HTTPGet.Path, pr.path)
			}
			if got := portNumber(t, where, pr.probe.HTTPGet.Port, c); got != wantPort {
				t.Errorf("%s: %s on port %d, but %s listens on %d", where, pr.name, got, p, wantPort)
			}
		}
		if cfg.Stream.Replicas != 3 {
			t.Errorf("%s: stream replicas %d; the base runs R3 streams on a 3-node NATS cluster", where, cfg.Stream.Replicas)
		}

		// The graceful stop must fit in the grace period, after any preStop
		// sleep, or Kubernetes kills the pod mid-batch.
		preStop := 0
		if c.Lifecycle != nil && c.Lifecycle.PreStop != nil && c.Lifecycle.PreStop.Sleep != nil {
			preStop = c.Lifecycle.PreStop.Sleep.Seconds
		}
		if pod.TerminationGracePeriodSeconds == nil {
			t.Errorf("%s: set terminationGracePeriodSeconds", where)
		} else {
			grace := time.Duration(*pod.TerminationGracePeriodSeconds) * time.Second
			need := cfg.ShutdownTimeout + time.Duration(preStop)*time.Second
			if grace <= need {
				t.Errorf("%s: terminationGracePeriodSeconds %s is not above preStop %ds + shutdown-timeout %s", where, grace, preStop, cfg.ShutdownTimeout)
			}
		}
	}
	for _, p := range []config.Program{config.Gateway, config.Worker, config.Migrate} {
		if !seen[p] {
			t.Errorf("no workload runs %s", p)
		}
	}
}

// checkContainer checks what every container of the base must be (the
// image overlays replace, requests, a hardened security context, settings
// the program knows and accepts) and returns its program and configuration.
func checkContainer(t *testing.T, objs []object, where string, c container) (config.Program, *config.Config) {
	t.Helper()
	p := programOf(t, where, c.Command)
	if c.Image != "wallet" {
		t.Errorf("%s: image %q; the base uses the name \"wallet\" for overlays to replace", where, c.Image)
	}
	if c.Resources.Requests["cpu"] == "" || c.Resources.Requests["memory"] == "" {
		t.Errorf("%s: set cpu and memory requests", where)
	}
	if c.SecurityContext.AllowPrivilegeEscalation == nil || *c.SecurityContext.AllowPrivilegeEscalation ||
		c.SecurityContext.ReadOnlyRootFilesystem == nil || !*c.SecurityContext.ReadOnlyRootFilesystem {
		t.Errorf("%s: want allowPrivilegeEscalation false and a read-only root file system", where)
	}
	for _, e := range c.Env {
		if !isSetting(p, e.Name) {
			t.Errorf("%s: env %s is not a setting of %s", where, e.Name, p)
		}
	}
	env := containerEnv(t, objs, where, c)
	if p == config.Gateway {
		// The base ships no tokens; an overlay must add them.
		env = gatewayAuth(t, where, env)
	}
	return p, loadConfig(t, where, p, env)
}

func TestSharedSettingsAreKnown(t *testing.T) {
	objs := loadManifests(t)
	// Which programs read each ConfigMap and Secret, and the Secret keys
	// read one by one (by the workloads or the NATS server's values).
	readers := map[string][]config.Program{}
	keyRefs := natsValuesKeyRefs(t)
	for _, o := range objs {
		if o.Kind != "Deployment" && o.Kind != "Job" {
			continue
		}
		w := spec[workloadSpec](t, o)
		for _, c := range append(w.Template.Spec.InitContainers, w.Template.Spec.Containers...) {
			p := programOf(t, o.Metadata.Name, c.Command)
			for _, from := range c.EnvFrom {
				if from.ConfigMapRef != nil {
					readers["ConfigMap/"+from.ConfigMapRef.Name] = append(readers["ConfigMap/"+from.ConfigMapRef.Name], p)
				}
				if from.SecretRef != nil {
					readers["Secret/"+from.SecretRef.Name] = append(readers["Secret/"+from.SecretRef.Name], p)
				}
			}
			for _, e := range c.Env {
				if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
					keyRefs[*e.ValueFrom.SecretKeyRef] = true
				}
			}
		}
	}
	for _, o := range objs {
		if o.Kind != "ConfigMap" && o.Kind != "Secret" {
			continue
		}
		key := o.Kind + "/" + o.Metadata.Name
		progs := readers[key]
		data := o.Data
		if o.Kind == "Secret" {
			data = o.StringData
		}
		if len(progs) == 0 && o.Kind == "Secret" {
			// Read key by key: every key must be read by someone.
			for name := range data {
				if !keyRefs[secretKeyRef{Name: o.Metadata.Name, Key: name}] {
					t.Errorf("%s: key %s is read by nobody", key, name)
				}
			}
			continue
		}
		if len(progs) == 0 {
			t.Errorf("%s is read by no workload", key)
		}
		for name := range data {
			known := false
			for _, p := range progs {
				known = known || isSetting(p, name)
			}
			if !known {
				t.Errorf("%s: %s is not a setting of any program reading it (%v)", key, name, progs)
			}
		}
	}
	// Secret settings belong in the Secret, not the ConfigMap.
	secret := map[string]bool{}
	for _, s := range config.AllSettings() {
		secret[s.Env] = s.Secret || s.Name == "db"
	}
	for _, o := range objs {
		if o.Kind == "ConfigMap" {
			for name := range o.Data {
				if secret[name] {
					t.Errorf("ConfigMap %s holds %s, which belongs in a Secret", o.Metadata.Name, name)
				}
			}
		}
	}
}

func TestServicesAndBudgets(t *testing.T) {
	objs := loadManifests(t)
	deployments := map[string]workloadSpec{}
	for _, o := range objs {
		if o.Kind == "Deployment" {
			deployments[o.Metadata.Name] = spec[workloadSpec](t, o)
		}
	}
	selects := func(sel map[string]string) (string, workloadSpec, bool) {
		for name, d := range deployments {
			if len(sel) > 0 && maps(sel, d.Template.Metadata.Labels) {
				return name, d, true
			}
		}
		return "", workloadSpec{}, false
	}
	pdbMin := map[string]int{}
	for _, o := range objs {
		switch o.Kind {
		case "Service":
			s := spec[serviceSpec](t, o)
			name, d, ok := selects(s.Selector)
			if !ok {
				t.Errorf("Service %s selects no Deployment", o.Metadata.Name)
				continue
			}
			for _, p := range s.Ports {
				portNumber(t, "Service "+o.Metadata.Name+" -> "+name, p.TargetPort, d.Template.Spec.Containers[0])
			}
		case "PodDisruptionBudget":
			s := spec[pdbSpec](t, o)
			name, _, ok := selects(s.Selector.MatchLabels)
			if !ok {
				t.Errorf("PodDisruptionBudget %s selects no Deployment", o.Metadata.Name)
				continue
			}
			if len(s.MinAvailable) == 0 && len(s.MaxUnavailable) == 0 {
				t.Errorf("PodDisruptionBudget %s sets neither minAvailable nor maxUnavailable", o.Metadata.Name)
			}
			if n, err := strconv.Atoi(string(s.MinAvailable)); err == nil {
				pdbMin[name] = n
			}
		}
	}
	for _, o := range objs {
		if o.Kind != "HorizontalPodAutoscaler" {
			continue
		}
		s := spec[hpaSpec](t, o)
		d, ok := deployments[s.ScaleTargetRef.Name]
		if !ok || s.ScaleTargetRef.Kind != "Deployment" {
			t.Errorf("HPA %s targets %s %s, not a Deployment in the base", o.Metadata.Name, s.ScaleTargetRef.Kind, s.ScaleTargetRef.Name)
		}
		// The HPA owns the count: replicas in the manifest would reset it
		// on every apply.
		if d.Replicas != nil {
			t.Errorf("Deployment %s sets replicas %d, but HPA %s owns its count", s.ScaleTargetRef.Name, *d.Replicas, o.Metadata.Name)
		}
		if s.MinReplicas <= pdbMin[s.ScaleTargetRef.Name] || s.MaxReplicas < s.MinReplicas {
			t.Errorf("HPA %s: min %d max %d; min must exceed the PDB's minAvailable (%d) so nodes can drain",
				o.Metadata.Name, s.MinReplicas, s.MaxReplicas, pdbMin[s.ScaleTargetRef.Name])
		}
	}
}

type networkPolicySpec struct {
	PodSelector struct {
		MatchLabels map[string]string `json:"matchLabels"`
	} `json:"podSelector"`
	PolicyTypes []string `json:"policyTypes"`
	Ingress     []struct {
		From  []json.RawMessage `json:"from"`
		Ports []struct {
			Port json.RawMessage `json:"port"`
		} `json:"ports"`
	} `json:"ingress"`
}

// TestNetworkPolicies: every pod is isolated for ingress, only the
// gateway's API port is open to any source, and Prometheus may reach every
// metrics port.
func TestNetworkPolicies(t *testing.T) {
	objs := loadManifests(t)
	var policies []object
	for _, o := range objs {
		if o.Kind == "NetworkPolicy" {
			policies = append(policies, o)
		}
	}
	for _, o := range objs {
		if o.Kind != "Deployment" {
			continue
		}
		w := spec[workloadSpec](t, o)
		c := w.Template.Spec.Containers[0]
		gateway := programOf(t, o.Metadata.Name, c.Command) == config.Gateway
		isolated, metricsAdmitted := false, false
		for _, np := range policies {
			s := spec[networkPolicySpec](t, np)
			if !maps(s.PodSelector.MatchLabels, w.Template.Metadata.Labels) {
				continue
			}
			if len(s.PodSelector.MatchLabels) == 0 {
				t.Errorf("NetworkPolicy %s selects every pod of the namespace", np.Metadata.Name)
			}
			isolated = isolated || slices.Contains(s.PolicyTypes, "Ingress")
			where := "NetworkPolicy " + np.Metadata.Name + " -> " + o.Metadata.Name
			for _, rule := range s.Ingress {
				if len(rule.Ports) == 0 {
					t.Errorf("%s: a rule admits every port", where)
				}
				for _, port := range rule.Ports {
					n := portNumber(t, where, port.Port, c)
					if len(rule.From) == 0 && (!gateway || n != portNumber(t, where, json.RawMessage(`"http"`), c)) {
						t.Errorf("%s: port %s is open to any source; only the gateway's http port may be", where, port.Port)
					}
					if len(rule.From) > 0 && n == portNumber(t, where, json.RawMessage(`"metrics"`), c) {
						metricsAdmitted = true
					}
				}
			}
		}
		if !isolated {
			t.Errorf("no NetworkPolicy isolates the pods of %s for ingress", o.Metadata.Name)
		}
		if !metricsAdmitted {
			t.Errorf("no NetworkPolicy lets Prometheus reach the metrics port of %s", o.Metadata.Name)
		}
	}
}

// TestCompose checks docker-compose.yml the same way: every WALLET_*
// variable is a setting of the program the service runs, and the values load.
func TestCompose(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var compose struct {
		Services map[string]struct {
			Image           string            `json:"image"`
			Entrypoint      []string          `json:"entrypoint"`
			Environment     map[string]string `json:"environment"`
			StopGracePeriod string            `json:"stop_grace_period"`
			Deploy          struct {
				Replicas int `json:"replicas"`
			} `json:"deploy"`
			Volumes     []string `json:"volumes"`
			Ports       []string `json:"ports"`
			Healthcheck struct {
				Test []string `json:"test"`
			} `json:"healthcheck"`
		} `json:"services"`
	}
	if err := yaml.Unmarshal(raw, &compose); err != nil {
		t.Fatal(err)
	}
	runs := map[config.Program]int{}
	for name, s := range compose.Services {
		// A developer's own PostgreSQL (or anything else) on the host keeps
		// its port: nothing is published on 5432.
		for _, port := range s.Ports {
			if parts := strings.Split(port, ":"); len(parts) >= 2 && parts[len(parts)-2] == "5432" {
				t.Errorf("compose service %s publishes %q: it clashes with a PostgreSQL on the host", name, port)
			}
		}
		if s.Image != "wallet:local" {
			continue
		}
		p := programOf(t, "compose service "+name, s.Entrypoint)
		// Long-running services check themselves with their own binary:
		// the distroless image has no shell.
		if p != config.Migrate {
			want := []string{"CMD", s.Entrypoint[0], "healthcheck"}
			if !slices.Equal(s.Healthcheck.Test, want) {
				t.Errorf("compose service %s: healthcheck %q, want %q", name, s.Healthcheck.Test, want)
			}
		}
		replicas := max(s.Deploy.Replicas, 1)
		runs[p] += replicas
		for k := range s.Environment {
			if !isSetting(p, k) {
				t.Errorf("compose service %s: %s is not a setting of %s", name, k, p)
			}
		}
		cfg := loadConfig(t, "compose service "+name, p, s.Environment)
		grace, err := time.ParseDuration(s.StopGracePeriod)
		if err != nil || grace <= cfg.ShutdownTimeout {
			t.Errorf("compose service %s: stop_grace_period %q must exceed shutdown-timeout %s", name, s.StopGracePeriod, cfg.ShutdownTimeout)
		}
	}
	if runs[config.Migrate] != 1 || runs[config.Gateway] != 1 || runs[config.Worker] != 2 {
		t.Errorf("compose runs %v; want one migrate, one gateway, two workers", runs)
	}
	nats, ok := compose.Services["nats"]
	if !ok || !strings.HasPrefix(nats.Image, "nats:2.15") {
		t.Errorf("compose NATS image %q; pin the 2.15 line (2.11+ is required)", nats.Image)
	}
	if !slices.ContainsFunc(nats.Volumes, func(v string) bool { return strings.HasSuffix(v, ":/data") }) {
		t.Errorf("compose NATS has no volume for its file store: %v", nats.Volumes)
	}
	conf, err := os.ReadFile(filepath.Join("nats", "nats.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^\s*sync_interval:\s*always\s*$`).Match(conf) || !strings.Contains(string(conf), "store_dir: /data") {
		t.Error("nats.conf must store JetStream in /data and sync before acknowledging")
	}
}

// TestDockerfile checks what cannot be seen without a Docker engine: the
// binaries are static, the runtime image is distroless and unprivileged.
func TestDockerfile(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	d := string(raw)
	for _, want := range []string{
		"CGO_ENABLED=0",
		"./cmd/gateway", "./cmd/worker", "./cmd/walletd", "./cmd/migrate",
		"FROM gcr.io/distroless/static",
		"USER 65532:65532",
	} {
		if !strings.Contains(d, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	for _, p := range config.Programs {
		if _, err := os.Stat(filepath.Join("..", "cmd", string(p), "main.go")); err != nil {
			t.Errorf("the Dockerfile builds ./cmd/%s, which does not exist", p)
		}
	}
}

// maps reports whether every key of sel has the same value in labels.
func maps(sel, labels map[string]string) bool {
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}
