package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestRunRefusesBadArguments(t *testing.T) {
	t.Parallel()
	for name, args := range map[string][]string{
		"unknown via":      {"--via", "carrier-pigeon"},
		"remote gateway":   {"--gateway", "http://203.0.113.7:8080", "--db", "postgres://postgres@127.0.0.1:1/none"},
		"remote nats":      {"--nats", "nats://example.com:4222"},
		"remote database":  {"--db", "postgres://postgres@db.example.com:5432/wallet"},
		"bad hot side":     {"--hot", "sideways"},
		"bad rss":          {"--rss", "walletd"},
		"bad cpu":          {"--cpu", "walletd"},
		"rate and peak":    {"--rate", "100", "--rate-of-peak", "0.8"},
		"peak above 1":     {"--rate-of-peak", "1.5"},
		"too many batches": {"--via", "nats", "--concurrency", "51"},
		"stray argument":   {"extra"},
	} {
		var out, errOut bytes.Buffer
		err := run(context.Background(), args, &out, &errOut)
		if err == nil {
			t.Errorf("%s: no error", name)
		}
		if out.Len() != 0 {
			t.Errorf("%s: wrote a report: %s", name, out.String())
		}
	}
}

func TestParseRSS(t *testing.T) {
	t.Parallel()
	got, err := parseRSS("gateway=12,worker=34")
	if err != nil || len(got) != 2 || got["gateway"] != 12 || got["worker"] != 34 {
		t.Fatalf("parseRSS = %v, %v", got, err)
	}
	for _, bad := range []string{"=12", "gateway=", "gateway=-1", "gateway"} {
		if _, err := parseRSS(bad); err == nil || !strings.Contains(err.Error(), "label=pid") {
			t.Errorf("parseRSS(%q): %v", bad, err)
		}
	}
}
