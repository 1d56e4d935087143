package deployments

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"sigs.k8s.io/yaml"

	"github.com/wallet/wallet/internal/config"
	"github.com/wallet/wallet/internal/natsbus"
)

// roleOf is the NATS role each service program connects with.
var roleOf = map[config.Program]natsbus.Role{
	config.Gateway: natsbus.RoleGateway,
	config.Worker:  natsbus.RoleWorker,
}

// passwordVar is the environment variable from which the NATS server's
// configurations read role's password.
func passwordVar(role natsbus.Role) string {
	return map[natsbus.Role]string{
		natsbus.RoleProducer: "NATS_PRODUCER_PASSWORD",
		natsbus.RoleGateway:  "NATS_GATEWAY_PASSWORD",
		natsbus.RoleWorker:   "NATS_WORKER_PASSWORD",
	}[role]
}

// natsUsers parses a NATS server configuration file with the server's
// own parser, with env as its environment, and returns its users by name.
func natsUsers(t *testing.T, file string, env map[string]string) map[string]*server.User {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	opts, err := server.ProcessConfigFile(file)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	users := map[string]*server.User{}
	for _, u := range opts.Users {
		users[u.Username] = u
	}
	return users
}

// checkRoles fails unless users are exactly the roles' users, each with
// its role's permissions (as sets) and the password env gives it.
func checkRoles(t *testing.T, where string, users map[string]*server.User, env map[string]string) {
	t.Helper()
	if len(users) != len(natsbus.Roles) {
		t.Errorf("%s: %d users, want one per role %v", where, len(users), natsbus.Roles)
	}
	sorted := func(s []string) []string { s = slices.Clone(s); slices.Sort(s); return s }
	for _, role := range natsbus.Roles {
		u, ok := users[role.UserName()]
		if !ok {
			t.Errorf("%s: no user %s", where, role.UserName())
			continue
		}
		if want := env[passwordVar(role)]; want == "" || u.Password != want {
			t.Errorf("%s: user %s's password is not $%s", where, u.Username, passwordVar(role))
		}
		want, got := role.Permissions(), u.Permissions
		if got == nil || got.Publish == nil || got.Subscribe == nil {
			t.Errorf("%s: user %s has no publish and subscribe permissions", where, u.Username)
			continue
		}
		if !slices.Equal(sorted(got.Publish.Allow), sorted(want.Publish.Allow)) || len(got.Publish.Deny) != 0 {
			t.Errorf("%s: user %s may publish to %v (deny %v), the %s role to %v", where, u.Username,
				got.Publish.Allow, got.Publish.Deny, role, want.Publish.Allow)
		}
		if !slices.Equal(sorted(got.Subscribe.Allow), sorted(want.Subscribe.Allow)) || len(got.Subscribe.Deny) != 0 {
			t.Errorf("%s: user %s may subscribe to %v (deny %v), the %s role to %v", where, u.Username,
				got.Subscribe.Allow, got.Subscribe.Deny, role, want.Subscribe.Allow)
		}
		if got.Response != nil {
			t.Errorf("%s: user %s may publish responses", where, u.Username)
		}
	}
}

// TestComposeNATSRoles: the compose NATS server has the three role users
// with the roles' permissions, and the gateway and the workers connect as
// their own role with its password.
func TestComposeNATSRoles(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var compose struct {
		Services map[string]struct {
			Image       string            `json:"image"`
			Entrypoint  []string          `json:"entrypoint"`
			Environment map[string]string `json:"environment"`
		} `json:"services"`
	}
	if err := yaml.Unmarshal(raw, &compose); err != nil {
		t.Fatal(err)
	}
	natsEnv := compose.Services["nats"].Environment
	users := natsUsers(t, filepath.Join("nats", "nats.conf"), natsEnv)
	checkRoles(t, "nats.conf", users, natsEnv)
	for name, s := range compose.Services {
		if s.Image != "wallet:local" {
			continue
		}
		p := programOf(t, "compose service "+name, s.Entrypoint)
		role, ok := roleOf[p]
		if !ok {
			continue
		}
		if s.Environment["WALLET_NATS_USER"] != role.UserName() || s.Environment["WALLET_NATS_PASSWORD"] != natsEnv[passwordVar(role)] {
			t.Errorf("compose service %s (%s) does not connect as %s with its password", name, p, role.UserName())
		}
	}
}

// helmValues reads deployments/nats/helm-values.yaml.
type helmValues struct {
	Config struct {
		Merge struct {
			Authorization json.RawMessage `json:"authorization"`
		} `json:"merge"`
	} `json:"config"`
	Container struct {
		Env map[string]struct {
			ValueFrom struct {
				SecretKeyRef secretKeyRef `json:"secretKeyRef"`
			} `json:"valueFrom"`
		} `json:"env"`
	} `json:"container"`
}

func loadHelmValues(t *testing.T) helmValues {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("nats", "helm-values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var v helmValues
	if err := yaml.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// natsValuesKeyRefs lists the Secret keys the NATS server's values read.
func natsValuesKeyRefs(t *testing.T) map[secretKeyRef]bool {
	t.Helper()
	refs := map[secretKeyRef]bool{}
	for _, e := range loadHelmValues(t).Container.Env {
		refs[e.ValueFrom.SecretKeyRef] = true
	}
	return refs
}

// TestKubernetesNATSRoles: the Helm values give the NATS server the three
// role users, with the roles' permissions and the passwords of the Secret
// wallet-nats-users; each Deployment connects as its program's role with
// the same Secret key.
func TestKubernetesNATSRoles(t *testing.T) {
	objs := loadManifests(t)
	secret, ok := find(objs, "Secret", "wallet-nats-users")
	if !ok {
		t.Fatal("no Secret wallet-nats-users")
	}
	keyOf := func(role natsbus.Role) secretKeyRef {
		return secretKeyRef{Name: "wallet-nats-users", Key: string(role) + "-password"}
	}

	v := loadHelmValues(t)
	// The chart writes "<< $VAR >>" as the config variable $VAR, read from
	// the server's environment: render it so, and let the server parse it.
	var auth any
	if err := json.Unmarshal(v.Config.Merge.Authorization, &auth); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // the server's parser has no \u escapes
	if err := enc.Encode(map[string]any{"authorization": auth}); err != nil {
		t.Fatal(err)
	}
	chartVar := regexp.MustCompile(`"<< \$(\w+) >>"`)
	conf := chartVar.ReplaceAllString(buf.String(), `$$$1`)
	file := filepath.Join(t.TempDir(), "nats.conf")
	if err := os.WriteFile(file, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, role := range natsbus.Roles {
		e, ok := v.Container.Env[passwordVar(role)]
		if !ok || e.ValueFrom.SecretKeyRef != keyOf(role) {
			t.Errorf("helm values: %s does not come from %+v", passwordVar(role), keyOf(role))
		}
		env[passwordVar(role)] = secret.StringData[keyOf(role).Key]
	}
	checkRoles(t, "helm-values.yaml", natsUsers(t, file, env), env)

	for _, o := range objs {
		if o.Kind != "Deployment" {
			continue
		}
		c := spec[workloadSpec](t, o).Template.Spec.Containers[0]
		p := programOf(t, o.Metadata.Name, c.Command)
		role := roleOf[p]
		var user string
		var password *secretKeyRef
		for _, e := range c.Env {
			switch e.Name {
			case "WALLET_NATS_USER":
				user = e.Value
			case "WALLET_NATS_PASSWORD":
				if e.ValueFrom != nil {
					password = e.ValueFrom.SecretKeyRef
				}
			}
		}
		if user != role.UserName() || password == nil || *password != keyOf(role) {
			t.Errorf("Deployment %s (%s) connects as %q with password %+v, want %s with %+v",
				o.Metadata.Name, p, user, password, role.UserName(), keyOf(role))
		}
	}
}
