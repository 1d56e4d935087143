#!/usr/bin/env bash
# Counts the module's functions, files and packages that one transfer runs
# through: POST /v1/transfers with Prefer: wait (applied, 201), then GET of
# its id. walletd is built with coverage; one run only starts and stops, the
# other also posts the transfer; the functions covered in the second and not
# in the first are the path (docs/architecture.md, "One transfer").
# Usage: docs/path-count.sh [checkout, default .]; PORT moves it off 18190.
# Needs go, curl and psql against the local PostgreSQL (trust auth).
set -euo pipefail
repo=$(cd "${1:-.}" && pwd)
port=${PORT:-18190}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$repo" && go build -cover -coverpkg=github.com/wallet/wallet/... -o "$work/walletd" ./cmd/walletd)
db="path_count_$$"
from=$(cat /proc/sys/kernel/random/uuid)
to=$(cat /proc/sys/kernel/random/uuid)
psql_() { psql -h 127.0.0.1 -U postgres -qAt "$@"; }

run() { # run <name> <post: yes|no>
	psql_ -c "drop database if exists $db" >/dev/null
	mkdir -p "$work/$1"
	GOCOVERDIR="$work/$1" "$work/walletd" --port "$port" --nats-listen "127.0.0.1:$((port + 1))" \
		--nats-store-dir "$work/$1-jetstream" --log-level error \
		--db "postgres://postgres@127.0.0.1:5432/$db?sslmode=disable" >"$work/$1.log" 2>&1 &
	local pid=$!
	until curl -fs -o /dev/null "http://127.0.0.1:$port/readyz"; do sleep 0.2; done
	# Two accounts, one funded, written straight into the database in both
	# runs so that creating them is not counted.
	psql_ -d "$db" -c "insert into accounts (id, currency, balance) values ('$from', 'USD', 100), ('$to', 'USD', 0)"
	if [ "$2" = yes ]; then
		local id
		id=$(cat /proc/sys/kernel/random/uuid)
		curl -fs -o /dev/null -w 'POST %{http_code}\n' -H 'Content-Type: application/json' -H 'Prefer: wait=5' \
			-d "{\"id\":\"$id\",\"from_account_id\":\"$from\",\"to_account_id\":\"$to\",\"amount\":\"1\",\"currency\":\"USD\"}" \
			"http://127.0.0.1:$port/v1/transfers"
		curl -fs -o /dev/null -w 'GET %{http_code}\n' "http://127.0.0.1:$port/v1/transfers/$id"
	fi
	sleep 1
	kill -INT "$pid"
	wait "$pid" || true
}
run idle no
run transfer yes
psql_ -c "drop database if exists $db" >/dev/null

go tool covdata func -i "$work/idle" >"$work/idle.txt"
go tool covdata func -i "$work/transfer" >"$work/transfer.txt"
# Lines read "file:line: function percent"; a function counts when it ran
# in the transfer run and not in the idle one.
awk 'NR == FNR { if ($NF != "0.0%") seen[$1 " " $2] = 1; next }
	$1 != "total:" && $NF != "0.0%" && !(($1 " " $2) in seen) { print $1, $2 }' \
	"$work/idle.txt" "$work/transfer.txt" | sed 's|^github.com/wallet/wallet/||' | sort >"$work/path.txt"
cat "$work/path.txt"
echo
echo "functions $(wc -l <"$work/path.txt"), files $(cut -d: -f1 "$work/path.txt" | sort -u | wc -l)"
cut -d: -f1 "$work/path.txt" | xargs -n1 dirname | sort | uniq -c
