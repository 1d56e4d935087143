package main

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/wallet/wallet/internal/dbtest"
	"github.com/wallet/wallet/internal/proctest"
)

func TestMain(m *testing.M) { proctest.Main(m) }

// TestMigrate creates a missing database, migrates it, and migrates it
// again harmlessly.
func TestMigrate(t *testing.T) {
	u, err := url.Parse(dbtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	name := "wallet_migrate_" + strings.ReplaceAll(uuid.NewString(), "-", "")[:12]
	target := *u
	target.Path = "/" + name
	ctx := context.Background()
	t.Cleanup(func() {
		conn, err := pgx.Connect(ctx, u.String())
		if err == nil {
			_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
			_ = conn.Close(ctx)
		}
	})

	bin := proctest.Build(t, "github.com/wallet/wallet/cmd/migrate")
	for run := 1; run <= 2; run++ {
		p := proctest.Start(t, bin, []string{"--create-db", "--log-format", "json"}, "WALLET_DB="+target.String())
		if code := p.Wait(time.Minute); code != 0 {
			t.Fatalf("run %d: exit status %d", run, code)
		}
		if len(p.Lines("migrations applied")) != 1 {
			t.Errorf("run %d: no \"migrations applied\" line", run)
		}
		if created := len(p.Lines("created database")); created != map[int]int{1: 1, 2: 0}[run] {
			t.Errorf("run %d: %d \"created database\" lines", run, created)
		}
	}
	conn, err := pgx.Connect(ctx, target.String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM currencies").Scan(&n); err != nil || n == 0 {
		t.Errorf("currencies after migrating: %d %v", n, err)
	}
}
