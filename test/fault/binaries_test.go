package fault

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
)

// binaries holds the paths of the programs the suite runs, built once per
// test binary into a temporary directory.
type binaries struct {
	Gateway string
	Worker  string
	NATS    string
}

var (
	buildOnce sync.Once
	built     binaries
	buildErr  error
	buildDir  string
	// buildMissing names a command whose source is not in the tree.
	buildMissing string
)

// moduleRoot is the repository root: the suite lives in test/fault.
func moduleRoot() string {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		panic(err)
	}
	return root
}

// goTool finds the go command that runs the tests.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	// The toolchain that built this test binary, when go is not on PATH.
	return filepath.Join(os.Getenv("GOROOT"), "bin", "go")
}

func build() {
	root := moduleRoot()
	buildDir, buildErr = os.MkdirTemp("", "wallet-fault-bin-")
	if buildErr != nil {
		return
	}
	built.NATS = filepath.Join(buildDir, "nats-server")
	pkgs := []string{"github.com/nats-io/nats-server/v2"}
	for _, cmd := range []string{"gateway", "worker"} {
		if _, err := os.Stat(filepath.Join(root, "cmd", cmd)); err != nil {
			buildMissing = "cmd/" + cmd
		}
	}
	if buildMissing == "" {
		built.Gateway = filepath.Join(buildDir, "gateway")
		built.Worker = filepath.Join(buildDir, "worker")
		pkgs = append(pkgs, "./cmd/gateway", "./cmd/worker")
	}
	race, _ := strconv.ParseBool(os.Getenv(envRaceBinaries))
	args := []string{"build", "-o", buildDir + string(filepath.Separator)}
	if race {
		args = append(args, "-race")
	}
	args = append(args, pkgs...)
	cmd := exec.Command(goTool(), args...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		buildErr = fmt.Errorf("go %v: %w\n%s", args, err, out)
		return
	}
	// The nats-server module's binary is named after the last element of
	// its module path, "v2".
	if _, err := os.Stat(built.NATS); err != nil {
		if err := os.Rename(filepath.Join(buildDir, "v2"), built.NATS); err != nil {
			buildErr = fmt.Errorf("locate nats-server binary: %w", err)
		}
	}
}

// natsBinary builds (once) and returns the programs, of which only
// nats-server is sure to be there.
func natsBinary(t testing.TB) binaries {
	t.Helper()
	buildOnce.Do(build)
	if buildErr != nil {
		t.Fatalf("fault: build binaries: %v", buildErr)
	}
	return built
}

// serviceBinaries returns every program, or skips the test when the
// service's commands are not in the tree.
func serviceBinaries(t testing.TB) binaries {
	t.Helper()
	b := natsBinary(t)
	if buildMissing != "" {
		t.Skipf("fault: SKIPPING, %s is not in the tree yet", buildMissing)
	}
	return b
}

// removeBinaries deletes the build directory; TestMain calls it.
func removeBinaries() {
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
}
