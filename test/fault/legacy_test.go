package fault

import (
	"testing"

	"github.com/wallet/wallet/internal/legacytest"
)

// TestOriginalScenarioSeparateProcesses: the 2020 API behaves as the
// original through a separate gateway and workers on a separate NATS server.
func TestOriginalScenarioSeparateProcesses(t *testing.T) {
	t.Parallel()
	c := startCluster(t, clusterConfig{Workers: 2})
	legacytest.PlayOriginalScenario(t, c.gatewayURLs()[0])
}
