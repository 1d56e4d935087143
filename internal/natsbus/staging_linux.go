package natsbus

import "syscall"

// tmpfsMagic is the Linux file system type of tmpfs (statfs(2)).
const tmpfsMagic = 0x01021994

// isMemoryFS reports whether dir is on a tmpfs.
func isMemoryFS(dir string) bool {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return false
	}
	return st.Type == tmpfsMagic
}
