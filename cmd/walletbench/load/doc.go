// Package load is the load tool behind cmd/walletbench: it builds a
// reproducible workload (accounts, funding deposits and a mix of transfers,
// deposits and withdrawals with uniform or Zipf-skewed account choice),
// drives it through the HTTP gateway, the 2020 API (which answers with the
// outcome), straight into JetStream, or through the synchronous
// one-transaction-per-transfer baseline, waits for every accepted request's
// outcome, checks the books in PostgreSQL, and reports throughput, latency
// and CPU per applied request (from /proc) as a table, JSON and an SVG plot.
//
// The workload is generated up front from a seed, so the service run and
// the baseline run of one invocation apply the same requests (each to its
// own fresh accounts), and the measured loops do no random-number work.
package load
