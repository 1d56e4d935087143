package transfer_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/wallet/wallet/internal/transfer"
)

func TestValidateMetadata(t *testing.T) {
	t.Parallel()
	many := func(n int) map[string]string {
		m := map[string]string{}
		for i := 0; i < n; i++ {
			m["k"+strconv.Itoa(i)] = "v"
		}
		return m
	}
	big := map[string]string{}
	for i := 0; i < 9; i++ {
		big["k"+strconv.Itoa(i)] = strings.Repeat("x", 500) // 9 * 502 bytes > 4096
	}
	fits := map[string]string{}
	for i := 0; i < 8; i++ {
		fits["k"+strconv.Itoa(i)] = strings.Repeat("x", 510) // 8 * 512 = 4096
	}
	for _, tc := range []struct {
		name string
		m    map[string]string
		ok   bool
	}{
		{"nil", nil, true},
		{"empty", map[string]string{}, true},
		{"typical", map[string]string{"order_id": "A-1", "provider.charge-id": "ch_1", "note": "été"}, true},
		{"sixteen keys", many(16), true},
		{"seventeen keys", many(17), false},
		{"empty key", map[string]string{"": "v"}, false},
		{"key of 64", map[string]string{strings.Repeat("a", 64): "v"}, true},
		{"key of 65", map[string]string{strings.Repeat("a", 65): "v"}, false},
		{"upper-case key", map[string]string{"Order": "v"}, false},
		{"key with a space", map[string]string{"a b": "v"}, false},
		{"non-ASCII key", map[string]string{"é": "v"}, false},
		{"empty value", map[string]string{"k": ""}, true},
		{"value of 512 bytes", map[string]string{"k": strings.Repeat("é", 256)}, true},
		{"value of 513 bytes", map[string]string{"k": strings.Repeat("x", 513)}, false},
		{"invalid UTF-8", map[string]string{"k": "\xff"}, false},
		{"4096 bytes in all", fits, true},
		{"over 4 KiB in all", big, false},
	} {
		err := transfer.ValidateMetadata(tc.m)
		if tc.ok {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		var e *transfer.Error
		if !errors.As(err, &e) || e.Code != transfer.CodeInvalidMetadata {
			t.Errorf("%s: got %v, want %s", tc.name, err, transfer.CodeInvalidMetadata)
		}
	}
}
