package lifecycle

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/wallet/wallet/internal/natsbus"
)

// TestEmbeddedUsersPersist: the generated credentials are written once,
// owner-only, and read back unchanged, so a producer's password survives a
// restart.
func TestEmbeddedUsersPersist(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), CredentialsFileName)
	first, err := loadOrCreateUsers(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("credentials file: %v %v", st, err)
	}
	again, err := loadOrCreateUsers(path)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, r := range natsbus.Roles {
		u := first[r]
		if u.Role != r || u.Name != r.UserName() || len(u.Password) != 32 || seen[u.Password] {
			t.Errorf("role %s: %+v", r, u)
		}
		seen[u.Password] = true
		if again[r] != u {
			t.Errorf("role %s changed on reload: %+v, then %+v", r, u, again[r])
		}
	}
	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadOrCreateUsers(path); err == nil {
		t.Error("a damaged credentials file was accepted")
	}
}

func TestIsLoopback(t *testing.T) {
	t.Parallel()
	for host, want := range map[string]bool{
		"127.0.0.1": true, "localhost": true, "::1": true, "127.0.0.2": true,
		"": false, "0.0.0.0": false, "::": false, "10.1.2.3": false, "wallet.example": false,
	} {
		if got := isLoopback(host); got != want {
			t.Errorf("isLoopback(%q) = %v, want %v", host, got, want)
		}
	}
}
