package natsbus

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// ErrNoMemoryFS is returned by StageBatchesInMemory when the directory it
// is given is not on a memory file system.
var ErrNoMemoryFS = errors.New("no memory file system for batch staging")

// BatchStaging is where a file-backed single-node stream stages its atomic
// batches: nats-server writes each batch to a store of its own under the
// stream's directory (created, synced and deleted per batch) before it
// commits the batch to the stream with one sync. The staging store only
// lets the server finish a batch that a crash interrupted halfway through
// its commit; on the disks measured it was most of an atomic batch's cost
// (docs/performance.md). A batch's PubAck still comes after the stream's
// own sync wherever the staging store lives.
type BatchStaging struct {
	// Link is the stream's staging directory, now a symbolic link.
	Link string
	// Dir is the directory on the memory file system it points to.
	Dir string
}

// StageBatchesInMemory points stream's batch staging directory, in the
// JetStream store under storeDir, at a directory of its own on the memory
// file system memFS (Linux: /dev/shm). The stream must exist. Call it after
// the server has started: at start-up nats-server finishes any interrupted
// batch from the staging directory and then removes the directory (the
// link, not what it points to), so a restart needs this call again.
//
// What it changes: a batch is all-or-nothing across a process crash as
// before (the memory file system outlives the process), but after a power
// loss in the middle of a commit, before its PubAck, a first part of the
// batch may be stored and the rest not. The publisher got no PubAck and
// publishes again under the same ids, which the stream and the workers
// deduplicate: every request of the wallet is independent, so nothing
// relies on a batch being whole.
//
// It changes nothing and returns an error when the staging directory is a
// directory in use (a batch is being staged at this moment) or memFS is
// not a memory file system.
func StageBatchesInMemory(storeDir, stream, memFS string) (BatchStaging, error) {
	if !isMemoryFS(memFS) {
		return BatchStaging{}, fmt.Errorf("%w (%q)", ErrNoMemoryFS, memFS)
	}
	streamDirs, err := streamStores(storeDir, stream)
	if err != nil {
		return BatchStaging{}, fmt.Errorf("stage batches in memory: %w", err)
	}
	if len(streamDirs) != 1 {
		return BatchStaging{}, fmt.Errorf("stage batches in memory: %d stores of stream %s under %s, want 1", len(streamDirs), stream, storeDir)
	}
	abs, err := filepath.Abs(streamDirs[0])
	if err != nil {
		return BatchStaging{}, err
	}
	// One directory per stream store, named after its path, so a restart
	// finds (and empties) its own and two stores never share one.
	sum := sha256.Sum256([]byte(abs))
	s := BatchStaging{
		Link: filepath.Join(abs, "batches"),
		Dir:  filepath.Join(memFS, "wallet-batches-"+hex.EncodeToString(sum[:8])),
	}
	if target, err := os.Readlink(s.Link); err == nil && target == s.Dir {
		return s, nil
	}
	// A staging directory on disk is removed only while empty: a non-empty
	// one holds a batch being staged now.
	if err := os.Remove(s.Link); err != nil && !errors.Is(err, os.ErrNotExist) {
		return BatchStaging{}, fmt.Errorf("stage batches in memory: %w", err)
	}
	// Nothing links here any more: what an earlier process left (at most
	// an interrupted batch, which the server's start-up has finished) goes.
	if err := os.RemoveAll(s.Dir); err != nil {
		return BatchStaging{}, fmt.Errorf("stage batches in memory: %w", err)
	}
	if err := os.Mkdir(s.Dir, 0o700); err != nil {
		return BatchStaging{}, fmt.Errorf("stage batches in memory: %w", err)
	}
	// If a batch created the directory on disk again since the removal,
	// the link fails and the batches stay on disk: slower, as correct.
	if err := os.Symlink(s.Dir, s.Link); err != nil {
		_ = os.Remove(s.Dir)
		return BatchStaging{}, fmt.Errorf("stage batches in memory: %w", err)
	}
	return s, nil
}

// streamStores lists the directories of stream's store under storeDir, one
// per account that has the stream (jetstream/<account>/streams/<stream>).
func streamStores(storeDir, stream string) ([]string, error) {
	accounts, err := os.ReadDir(filepath.Join(storeDir, "jetstream"))
	if err != nil {
		return nil, err
	}
	var dirs []string
	for _, a := range accounts {
		dir := filepath.Join(storeDir, "jetstream", a.Name(), "streams", stream)
		if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
			dirs = append(dirs, dir)
		}
	}
	return dirs, nil
}
