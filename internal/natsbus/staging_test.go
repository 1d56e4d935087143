package natsbus_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"github.com/wallet/wallet/internal/natsbus"
	"github.com/wallet/wallet/internal/natstest"
)

const shm = "/dev/shm"

// TestStageBatchesInMemory checks that an atomic batch of the requests
// stream is staged in the memory directory while it is open, is stored
// whole at its commit, and that a restart, which removes the link, can be
// followed by linking again.
func TestStageBatchesInMemory(t *testing.T) {
	if runtime.GOOS != "linux" {
		_, err := natsbus.StageBatchesInMemory(t.TempDir(), natsbus.RequestsStream, shm)
		if !errors.Is(err, natsbus.ErrNoMemoryFS) {
			t.Fatalf("on %s: err = %v, want ErrNoMemoryFS", runtime.GOOS, err)
		}
		return
	}
	srv := natstest.Start(t)
	nc, js := srv.Setup(t, natsbus.Config{Partitions: 4})

	s, err := natsbus.StageBatchesInMemory(srv.StoreDir(), natsbus.RequestsStream, shm)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(s.Dir) })
	if target, err := os.Readlink(s.Link); err != nil || target != s.Dir {
		t.Fatalf("link %s -> %q (%v), want %s", s.Link, target, err, s.Dir)
	}
	if again, err := natsbus.StageBatchesInMemory(srv.StoreDir(), natsbus.RequestsStream, shm); err != nil || again != s {
		t.Fatalf("second call: %+v, %v; want %+v", again, err, s)
	}

	// An open batch is staged in memory; its commit stores it and the
	// server deletes the staging store.
	subject := func() string { return "wallet.requests." + uuid.NewString() + "." + uuid.NewString() }
	batch, err := jetstreamext.NewBatchPublisher(js)
	if err != nil {
		t.Fatal(err)
	}
	// The first message is acknowledged once staged.
	if err := batch.Add(subject(), []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if n := entries(t, s.Dir); n != 1 {
		t.Fatalf("%d entries in %s with a batch open, want its staging store", n, s.Dir)
	}
	if _, err := batch.Commit(context.Background(), subject(), []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(context.Background(), natsbus.RequestsStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 2 {
		t.Fatalf("stream holds %d messages, want the batch's 2", info.State.Msgs)
	}
	waitFor(t, "the staging store deleted", func() bool { return entries(t, s.Dir) == 0 })

	// At start-up the server removes the link; linking again works.
	nc.Close()
	srv.Restart()
	if fi, err := os.Lstat(s.Link); err == nil {
		t.Fatalf("after a restart %s is still there (%s)", s.Link, fi.Mode())
	}
	if again, err := natsbus.StageBatchesInMemory(srv.StoreDir(), natsbus.RequestsStream, shm); err != nil || again != s {
		t.Fatalf("after a restart: %+v, %v; want %+v", again, err, s)
	}
}

// TestStageBatchesInMemoryRefuses checks that a staging
// directory on disk holding a batch is not replaced, and that a directory
// that is not a memory file system is refused.
func TestStageBatchesInMemoryRefuses(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Log("only Linux has a memory file system to stage in; TestStageBatchesInMemory checks the error")
		return
	}
	srv := natstest.Start(t)
	srv.Setup(t, natsbus.Config{Partitions: 4})
	streams, err := filepath.Glob(filepath.Join(srv.StoreDir(), "jetstream", "*", "streams", natsbus.RequestsStream))
	if err != nil || len(streams) != 1 {
		t.Fatalf("stream store: %v, %v", streams, err)
	}
	inUse := filepath.Join(streams[0], "batches", "open-batch")
	if err := os.MkdirAll(inUse, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := natsbus.StageBatchesInMemory(srv.StoreDir(), natsbus.RequestsStream, shm); err == nil {
		t.Fatal("a staging directory holding a batch was replaced")
	}
	if fi, err := os.Stat(inUse); err != nil || !fi.IsDir() {
		t.Fatalf("the batch in progress is gone: %v", err)
	}

	// A directory on disk is refused. The test's directory is one unless
	// the machine keeps its temporary files in memory: staging there then
	// succeeds, and the refusal cannot be checked here.
	disk := t.TempDir()
	_, err = natsbus.StageBatchesInMemory(srv.StoreDir(), natsbus.RequestsStream, disk)
	switch {
	case errors.Is(err, natsbus.ErrNoMemoryFS):
	case err == nil:
		t.Logf("%s is on a memory file system: the refusal of a disk directory is not checked", disk)
	default:
		t.Fatalf("staging on %s: err = %v, want ErrNoMemoryFS", disk, err)
	}
}

func entries(t *testing.T, dir string) int {
	t.Helper()
	list, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return len(list)
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
