//go:build !linux

package natsbus

// isMemoryFS reports false: only Linux's tmpfs is recognised.
func isMemoryFS(string) bool { return false }
