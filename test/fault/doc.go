// Package fault is the wallet's fault and hostile-input suite. It runs the
// real binaries (a nats-server process with its store on disk, gateways and
// workers as subprocesses, PostgreSQL) under a seeded mixed load, injects
// faults (kill -9, SIGSTOP, NATS restarts, terminated database backends,
// retry storms) and hostile input, and then checks the books from the
// database and the results stream: every accepted request has exactly one
// outcome, nothing is applied twice, money is conserved, and every
// account's statement replays to its balance. The load mixes holds (some
// with timeouts short enough to expire during the run), posts, voids and
// reversals into the transfers; the books then also check that held and
// available never go negative, held is the sum of the live holds, each
// hold's state is what its one applied settlement says, and a request's
// reversed amount is the sum of its applied reversals.
//
// The default run is short, so that it runs in CI with the other tests;
// WALLET_FAULT_LONG=1 runs the long version, and WALLET_FAULT_SEED=<n>
// replays a seed. docs/reliability.md describes what is injected and
// checked and records the figures of the last long run.
package fault
