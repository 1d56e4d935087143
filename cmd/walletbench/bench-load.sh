#!/usr/bin/env bash
# Runs walletd, built from this tree with the README's flags on a fresh
# JetStream store, and walletbench beside the synchronous baseline through
# HTTP (128 connections) and through NATS, then prints both ratios.
# Arguments go to both walletbench runs (say --requests 30000).
# PORT and NATS_PORT move walletd and walletbench off 8080 and 4223;
# WALLETD_ARGS adds flags to walletd (say --publish-batch-max 200); VIAS
# picks the runs (default "http nats"). Every invocation starts from an
# empty database of its own, BENCH_DB (default wallet_bench on the local
# server), dropped first: the rows an earlier run left would otherwise
# slow the later runs' statements (more so without autovacuum), and the
# README's database stays untouched.
set -euo pipefail
cd "$(dirname "$0")/../.."
port=${PORT:-8080}
nats_port=${NATS_PORT:-4223}
db=${BENCH_DB:-wallet_bench}
case $db in
*[!a-z0-9_]*)
	echo "BENCH_DB must be a plain database name" >&2
	exit 2
	;;
esac
db_url="postgres://postgres@127.0.0.1:5432/$db?sslmode=disable"
dir=$(mktemp -d)
pid=
cleanup() {
	if [ -n "$pid" ]; then
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	rm -rf "$dir"
}
trap cleanup EXIT

CGO_ENABLED=0 go build -trimpath -o "$dir/" ./cmd/walletd ./cmd/walletbench
psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)"
# A fresh store, so no backlog of an earlier run is replayed during this one.
"$dir/walletd" ${WALLETD_ARGS:-} --db "$db_url" --port "$port" --nats-listen "127.0.0.1:$nats_port" --nats-store-dir "$dir/jetstream" >"$dir/walletd.log" 2>&1 &
pid=$!
until curl -fs -o /dev/null "http://127.0.0.1:$port/readyz"; do
	if ! kill -0 "$pid" 2>/dev/null; then
		cat "$dir/walletd.log" >&2
		echo "walletd did not start" >&2
		pid=
		exit 2
	fi
	sleep 0.2
done

bench() {
	"$dir/walletbench" --gateway "http://127.0.0.1:$port" --nats "nats://127.0.0.1:$nats_port" \
		--db "$db_url" --cpu "walletd=$pid,postgres=postgres" --quiet --baseline sync "$@"
}
vias=${VIAS:-http nats}
for via in $vias; do
	if [ "$via" = http ]; then
		bench --via http --concurrency 128 "$@" | tee "$dir/http.txt"
	else
		bench --via "$via" "$@" | tee "$dir/$via.txt"
	fi
done

echo
for via in $vias; do
	label="$via vs sync:"
	[ "$via" = http ] && label="HTTP (128 connections) vs sync:"
	grep -h -e '^ratio:' -e '^cpu ratio:' "$dir/$via.txt" | sed "s/^/$label /"
done
