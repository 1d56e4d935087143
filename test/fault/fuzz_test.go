package fault

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

// fuzzTarget is a Fuzz function and the package directory that holds it.
type fuzzTarget struct {
	dir  string // relative to the module root, e.g. ./internal/natsbus
	name string
}

var fuzzFunc = regexp.MustCompile(`^func (Fuzz\w+)\(\w+ \*testing\.F\)`)

// findFuzzTargets lists every fuzz target in the tree.
func findFuzzTargets(t *testing.T, root string) []fuzzTarget {
	t.Helper()
	var out []fuzzTarget
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "vendor") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if m := fuzzFunc.FindStringSubmatch(sc.Text()); m != nil {
				rel, _ := filepath.Rel(root, filepath.Dir(path))
				out = append(out, fuzzTarget{dir: "./" + filepath.ToSlash(rel), name: m[1]})
			}
		}
		return sc.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].dir+out[i].name < out[j].dir+out[j].name })
	return out
}

// TestFuzzTargets runs every fuzz target in the tree for a while (long
// suite only; WALLET_FAULT_FUZZTIME sets the time per target, default
// 10m), two at a time with one fuzzing worker each. A crasher makes go
// test write its input under the package's testdata/fuzz directory, where
// it stays as a regression seed; this test fails and names it.
func TestFuzzTargets(t *testing.T) {
	if !long() {
		t.Skipf("fuzzing runs in the long suite (%s=1)", envLong)
	}
	fuzztime := os.Getenv(envFuzzTime)
	if fuzztime == "" {
		fuzztime = "10m"
	}
	if _, err := time.ParseDuration(fuzztime); err != nil {
		t.Fatalf("%s: %v", envFuzzTime, err)
	}
	root := moduleRoot()
	targets := findFuzzTargets(t, root)
	if len(targets) == 0 {
		t.Fatal("no fuzz targets found")
	}
	for _, ft := range targets {
		t.Run(strings.TrimPrefix(ft.dir, "./")+"/"+ft.name, func(t *testing.T) {
			// Two targets at once (go test's -parallel, GOMAXPROCS by
			// default), each with one worker: the same CPU in half the
			// wall time of one after the other.
			t.Parallel()
			cmd := exec.CommandContext(t.Context(), goTool(), "test", "-run", "^$", "-fuzz", "^"+ft.name+"$",
				"-fuzztime", fuzztime, "-parallel", "1", ft.dir)
			cmd.Dir = root
			corpus := filepath.Join(root, ft.dir, "testdata", "fuzz", ft.name)
			before := listDir(corpus)
			start := time.Now()
			out, err := cmd.CombinedOutput()
			var found []string
			for name := range listDir(corpus) {
				if !before[name] {
					found = append(found, filepath.Join(ft.dir, "testdata", "fuzz", ft.name, name))
				}
			}
			switch {
			case len(found) > 0:
				t.Fatalf("%s %s found a failure; its input is kept as a regression seed in %v:\n%s", ft.dir, ft.name, found, out)
			case err != nil && strings.Contains(string(out), "context deadline exceeded"):
				// Go's fuzzing coordinator can report its own -fuzztime
				// deadline as a failure, with no input to blame
				// (go.dev/issue/75804, fixed in Go 1.27).
				t.Logf("%s: the fuzztime deadline was reported as a failure without an input (go.dev/issue/75804); not a crasher", ft.name)
			case err != nil:
				t.Fatalf("%s %s failed:\n%s", ft.dir, ft.name, out)
			}
			t.Logf("%s for %s: %s", ft.name, time.Since(start).Round(time.Second), lastLine(out))
		})
	}
}

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], "execs") {
			return strings.TrimSpace(lines[i])
		}
	}
	return lines[len(lines)-1]
}

// listDir returns the names of the files in dir (none if it is missing).
func listDir(dir string) map[string]bool {
	out := map[string]bool{}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		out[e.Name()] = true
	}
	return out
}
