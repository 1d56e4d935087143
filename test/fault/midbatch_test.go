package fault

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// workerMidBatch waits until one of the workers is inside a database
// transaction that has already written (a batch being applied) and returns
// it, so that a kill lands mid-batch rather than between batches. It maps
// the transaction's client port to the worker process owning that socket.
// It returns nil when no worker was caught mid-batch before ctx ended.
func (c *cluster) workerMidBatch(ctx context.Context) *service {
	conn, err := c.admin(ctx)
	if err != nil {
		return nil
	}
	defer conn.Close(context.Background())
	for ctx.Err() == nil {
		rows, err := conn.Query(ctx, `SELECT client_port FROM pg_stat_activity
			WHERE datname = $1 AND backend_xid IS NOT NULL AND client_port IS NOT NULL`, c.dbName)
		if err != nil {
			return nil
		}
		var ports []int
		for rows.Next() {
			var p int
			if rows.Scan(&p) == nil {
				ports = append(ports, p)
			}
		}
		rows.Close()
		if len(ports) > 0 {
			inodes := socketInodes(ports)
			for _, w := range c.workers {
				if pid := w.pid(); pid != 0 && ownsSocket(pid, inodes) {
					return w
				}
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(2 * time.Millisecond):
		}
	}
	return nil
}

// socketInodes maps local TCP ports to their socket inodes.
func socketInodes(ports []int) map[string]bool {
	want := map[int]bool{}
	for _, p := range ports {
		want[p] = true
	}
	out := map[string]bool{}
	for _, file := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(file)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 {
				continue
			}
			_, portHex, ok := strings.Cut(fields[1], ":")
			if !ok {
				continue
			}
			port, err := strconv.ParseInt(portHex, 16, 32)
			if err == nil && want[int(port)] {
				out[fields[9]] = true
			}
		}
		f.Close()
	}
	return out
}

// ownsSocket reports whether process pid holds one of the socket inodes.
func ownsSocket(pid int, inodes map[string]bool) bool {
	dir := "/proc/" + strconv.Itoa(pid) + "/fd"
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range entries {
		target, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		if inode, ok := strings.CutPrefix(target, "socket:["); ok && inodes[strings.TrimSuffix(inode, "]")] {
			return true
		}
	}
	return false
}
