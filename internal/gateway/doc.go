// Package gateway is the wallet's HTTP API, served with Fiber.
//
// Writes (transfers, deposits, withdrawals) are validated here as far as no
// database is needed, then published to the requests stream through a Queue;
// the gateway answers once JetStream has stored the request, or waits for the
// outcome when the client asks for it (Prefer: wait=N). Reads go straight to
// the Store. Errors are RFC 9457 problem documents with a stable code.
//
// The package also keeps the original 2020 service's API working unchanged,
// and serves its own OpenAPI 3.1 description at /openapi.json.
//
// It declares the small Store and Queue interfaces it needs; cmd/gateway and
// cmd/walletd wire the concrete store and queue (natsbus.Producer) into New.
package gateway
