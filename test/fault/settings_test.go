package fault

import (
	"encoding/json"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Environment variables that tune the suite.
const (
	// envLong selects the long suite: more load, more faults, the fuzz runs.
	envLong = "WALLET_FAULT_LONG"
	// envSeed replays a seed printed by an earlier run.
	envSeed = "WALLET_FAULT_SEED"
	// envRaceBinaries builds the service binaries with the race detector.
	envRaceBinaries = "WALLET_FAULT_RACE"
	// envFuzzTime sets how long each fuzz target runs in the long suite.
	envFuzzTime = "WALLET_FAULT_FUZZTIME"
	// envPGRestart makes the long suite also restart the PostgreSQL
	// cluster itself. Other tests using the cluster fail while it is down,
	// so it is never on by default.
	envPGRestart = "WALLET_FAULT_PG_RESTART"
	// envSequence runs the named faults in the given order instead of the
	// seeded shuffle, e.g. "postgres-outage,worker-kill,worker-pause".
	envSequence = "WALLET_FAULT_SEQUENCE"
	// envReportDir receives the runs' figures as JSON files.
	envReportDir = "WALLET_FAULT_REPORT_DIR"
)

// long reports whether the long suite was asked for.
func long() bool {
	v, _ := strconv.ParseBool(os.Getenv(envLong))
	return v
}

var (
	seedOnce sync.Once
	seedVal  uint64
)

// seed returns the run's seed: WALLET_FAULT_SEED when set, else the time.
// Every test logs it so a failure can be replayed.
func seed(t testing.TB) uint64 {
	t.Helper()
	seedOnce.Do(func() {
		if s := os.Getenv(envSeed); s != "" {
			v, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				panic("fault: " + envSeed + " must be an unsigned integer: " + err.Error())
			}
			seedVal = v
			return
		}
		seedVal = uint64(time.Now().UnixNano())
	})
	t.Logf("seed %d (replay with %s=%d)", seedVal, envSeed, seedVal)
	return seedVal
}

// jsonIndent renders a report.
func jsonIndent(v any) ([]byte, error) { return json.MarshalIndent(v, "", "  ") }
