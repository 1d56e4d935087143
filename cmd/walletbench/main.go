// Command walletbench measures the wallet service: it creates and funds its
// own accounts through the service, drives a mix of transfers, deposits and
// withdrawals through the HTTP gateway, the 2020 API or straight into NATS
// (or through the synchronous one-transaction-per-transfer baseline), waits
// for every outcome, checks the books in PostgreSQL and reports throughput,
// latency and CPU per applied request. It exits 1 when a book check fails and 2 when the run could not
// be carried out.
//
//	go run ./cmd/walletbench --via nats --baseline sync
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/wallet/wallet/cmd/walletbench/load"
)

// errChecksFailed marks a run that completed with a failed book check.
var errChecksFailed = errors.New("book checks failed")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	switch {
	case err == nil:
	case errors.Is(err, errChecksFailed):
		fmt.Fprintln(os.Stderr, "walletbench:", err)
		os.Exit(1)
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	default:
		fmt.Fprintln(os.Stderr, "walletbench:", err)
		os.Exit(2)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("walletbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		cfg        load.Config
		currencies = fs.String("currencies", "USD", "comma-separated currencies of the accounts (precisions come from the database)")
		hot        = fs.String("hot", "none", "skewed (Zipf) account choice: none, debit, credit or both")
		rss        = fs.String("rss", "", "record peak memory of processes: label=pid,label=pid (Linux)")
		cpu        = fs.String("cpu", "", "processes whose CPU time to report per applied request, as label=pid or label=command-name, comma-separated (Linux; default walletd, gateway, worker and postgres by name; the tool itself always)")
		jsonOut    = fs.Bool("json", false, "print the report as JSON instead of a table")
		svgOut     = fs.String("out", "", "write a plot of throughput and latency over time to this .svg file")
		quiet      = fs.Bool("quiet", false, "no live progress line")
		cpuProfile = fs.String("cpuprofile", "", "write the tool's own CPU profile to this file (to see what the load costs on the client side)")
	)
	fs.StringVar(&cfg.Via, "via", load.ViaHTTP, "drive load through: http (the gateway), nats (straight into JetStream), legacy (the 2020 API's POST /transfers/, which answers with the outcome) or sync (the baseline alone)")
	fs.StringVar(&cfg.Baseline, "baseline", "", "also run the same workload through the synchronous baseline (sync) and print the ratio")
	fs.StringVar(&cfg.GatewayURL, "gateway", load.DefaultGatewayURL, "gateway base URL (loopback only)")
	fs.StringVar(&cfg.NATSURL, "nats", load.DefaultNATSURL, "NATS URL, to publish (--via nats) and read outcomes (loopback only)")
	fs.StringVar(&cfg.DatabaseURL, "db", load.DefaultDatabaseURL, "PostgreSQL URL, for the book checks and the baseline (loopback only)")
	fs.StringVar(&cfg.Token, "token", os.Getenv("WALLETBENCH_TOKEN"), "bearer token for the gateway (default $WALLETBENCH_TOKEN)")
	fs.IntVar(&cfg.Workload.Accounts, "accounts", 10_000, "accounts to create and fund")
	fs.IntVar(&cfg.Workload.Requests, "requests", 200_000, "measured requests")
	fs.Float64Var(&cfg.Workload.Mix.Deposits, "deposits", load.DefaultMix.Deposits, "share of deposits")
	fs.Float64Var(&cfg.Workload.Mix.Withdrawals, "withdrawals", load.DefaultMix.Withdrawals, "share of withdrawals")
	fs.Float64Var(&cfg.Workload.Mix.Rejects, "rejects", load.DefaultMix.Rejects, "share of requests beyond all funds, which must be rejected")
	fs.Float64Var(&cfg.Workload.Mix.Holds, "holds", 0, "share of holds, each posted (3 in 4) or voided a little later in place of a transfer")
	fs.Float64Var(&cfg.Workload.ZipfS, "zipf-s", load.DefaultZipfS, "Zipf exponent of --hot (greater than 1)")
	fs.Int64Var(&cfg.Workload.Funding, "funding", 1000, "each account's opening deposit, in whole currency units")
	fs.Uint64Var(&cfg.Workload.Seed, "seed", 1, "workload seed: the same seed gives the same requests")
	fs.BoolVar(&cfg.Workload.Labels, "labels", false, "every measured request carries two metadata pairs and a unique reference (the baseline ignores them)")
	fs.IntVar(&cfg.Concurrency, "concurrency", 16, "HTTP connections, NATS publishing lanes or baseline connections")
	fs.IntVar(&cfg.BaselineConcurrency, "baseline-concurrency", 0, "connections of the baseline (default --concurrency, at most 16: the baseline's best here)")
	fs.Float64Var(&cfg.Rate, "rate", 0, "open loop at this many requests per second; 0 runs closed loop")
	fs.Float64Var(&cfg.RateOfPeak, "rate-of-peak", 0, "run closed loop to find the peak, then open loop at this share of it (0.8: 80%)")
	fs.StringVar(&cfg.NATSMode, "nats-mode", load.ModeAtomic, "with --via nats: atomic (JetStream atomic batches), async (windowed async publishes) or single")
	fs.IntVar(&cfg.Batch, "batch", 100, "requests per atomic batch or async window (at most 1000)")
	fs.DurationVar(&cfg.Linger, "linger", 2*time.Millisecond, "how long a NATS lane waits to fill a batch")
	fs.StringVar(&cfg.CreateAccounts, "create-accounts", load.SetupService, "create accounts through the gateway (service) or with one INSERT (db)")
	fs.DurationVar(&cfg.MaxDuration, "max-duration", 15*time.Minute, "stop sending after this long")
	fs.DurationVar(&cfg.DrainTimeout, "drain-timeout", time.Minute, "give up waiting for outcomes after this long without one")
	fs.BoolVar(&cfg.GlobalCheck, "global-check", true, "also check conservation and balances over the whole database")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	var err error
	if cfg.Workload.Hot, err = load.ParseHot(*hot); err != nil {
		return err
	}
	for _, c := range strings.Split(*currencies, ",") {
		if c = strings.TrimSpace(c); c != "" {
			cfg.CurrencyCodes = append(cfg.CurrencyCodes, c)
		}
	}
	if cfg.RSS, err = parseRSS(*rss); err != nil {
		return err
	}
	if *cpu != "" {
		if cfg.CPUTargets, err = load.ParseCPUTargets(*cpu); err != nil {
			return err
		}
	}
	if !*quiet {
		cfg.Progress = stderr
	}
	cfg.Command = "walletbench " + strings.Join(args, " ")
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			_ = f.Close()
			return err
		}
		defer func() {
			pprof.StopCPUProfile()
			if cerr := f.Close(); cerr != nil && err == nil {
				err = fmt.Errorf("cpu profile: %w", cerr)
			}
		}()
	}

	rep, err := load.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if *jsonOut {
		err = rep.WriteJSON(stdout)
	} else {
		err = rep.WriteText(stdout)
	}
	if err != nil {
		return err
	}
	if *svgOut != "" {
		if err := writeSVG(*svgOut, rep); err != nil {
			return err
		}
	}
	if !rep.Passed() {
		return errChecksFailed
	}
	return nil
}

func writeSVG(path string, rep *load.Report) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	title := fmt.Sprintf("walletbench %s - %d accounts, %d requests, hot=%s", rep.StartedAt.Format(time.RFC3339),
		rep.Workload.Accounts, rep.Workload.Requests, rep.Workload.Hot)
	if err := load.WriteSVG(f, title, rep.Runs); err != nil {
		_ = f.Close() // the write error is the one to report
		return err
	}
	return f.Close()
}

// parseRSS reads "label=pid,label=pid".
func parseRSS(s string) (map[string]int, error) {
	if s == "" {
		return nil, nil
	}
	out := map[string]int{}
	for _, part := range strings.Split(s, ",") {
		label, pidText, ok := strings.Cut(part, "=")
		pid, err := strconv.Atoi(pidText)
		if !ok || label == "" || err != nil || pid < 1 {
			return nil, fmt.Errorf("rss %q: want label=pid", part)
		}
		out[label] = pid
	}
	return out, nil
}
