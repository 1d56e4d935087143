package transfer

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"
	"pgregory.net/rapid"
)

// metadataKey draws keys that are valid or break one rule.
func metadataKey() *rapid.Generator[string] {
	return rapid.OneOf(
		rapid.StringMatching(`[a-z0-9_.-]{1,64}`),
		rapid.StringMatching(`[a-z0-9_.-]{65,70}`),
		rapid.StringMatching(`[a-zA-Z0-9 /:]{1,10}`),
		rapid.Just(""),
	)
}

// TestCheckMetadataProperty compares CheckMetadata with the limits written
// out plainly: it accepts exactly the maps within all of them.
func TestCheckMetadataProperty(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		m := rapid.MapOfN(metadataKey(), rapid.OneOf(
			rapid.StringN(0, 40, -1),
			rapid.StringN(500, 520, 520),
			rapid.Just("\xff"),
		), 0, 20).Draw(t, "metadata")
		ok := len(m) <= 16
		size := 0
		for k, v := range m {
			size += len(k) + len(v)
			if len(k) < 1 || len(k) > 64 || strings.Trim(k, "abcdefghijklmnopqrstuvwxyz0123456789_.-") != "" {
				ok = false
			}
			if len(v) > 512 || !utf8.ValidString(v) {
				ok = false
			}
		}
		if size > 4096 {
			ok = false
		}
		e := CheckMetadata(m)
		if (e == nil) != ok {
			t.Fatalf("CheckMetadata(%d keys, %d bytes) = %v, want ok=%v", len(m), size, e, ok)
		}
		if e != nil && e.Code != CodeInvalidMetadata {
			t.Fatalf("code %s", e.Code)
		}
	})
}

func TestCheckMetadataLimits(t *testing.T) {
	t.Parallel()
	full := map[string]string{}
	for i := range 16 {
		full[strings.Repeat(string(rune('a'+i)), 64)] = strings.Repeat("v", 190) // 16*(64+190) = 4064 bytes
	}
	if e := CheckMetadata(full); e != nil {
		t.Fatalf("at the limits: %v", e)
	}
	full["q"] = ""
	if CheckMetadata(full) == nil {
		t.Fatal("17 keys accepted")
	}
	delete(full, "q")
	full["a"+strings.Repeat("a", 63)] = strings.Repeat("v", 223)
	if e := CheckMetadata(full); e == nil || !strings.Contains(e.Detail, "4096") {
		t.Fatalf("over 4 KiB: %v", e)
	}
	if e := CheckMetadata(map[string]string{"ok": "x", "Bad": "y"}); e == nil || !strings.Contains(e.Detail, `"Bad"`) {
		t.Fatalf("the detail names the key: %v", e)
	}
}

func TestCheckReference(t *testing.T) {
	t.Parallel()
	for ref, ok := range map[string]bool{
		"":                         true, // none
		"order-1":                  true,
		"with space":               true,
		"ünïcødé ✓":                true,
		strings.Repeat("é", 128):   true,
		strings.Repeat("x", 129):   false,
		"tab\t":                    false,
		"nul\x00":                  false,
		"\xff":                     false,
		"zero\u200bwidth":          false, // a format character
		"new\nline":                false,
		strings.Repeat("a", 128):   true,
		" leading and trailing ":   true,
		"emoji 😀":                  true,
		"\u00a0non-breaking space": false,
	} {
		if e := CheckReference(ref); (e == nil) != ok {
			t.Errorf("%q: %v, want ok=%v", ref, e, ok)
		}
	}
}

// TestLabelsInFingerprint: the labels are part of a request's identity,
// in any map order, and requests without them keep their fingerprints.
func TestLabelsInFingerprint(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		base := Request{ID: uuid.New(), Kind: KindTransfer, From: uuid.New(), To: uuid.New(), Amount: decimal.NewFromInt(1), Currency: "USD"}
		m := rapid.MapOfN(rapid.StringMatching(`[a-z]{1,3}`), rapid.StringN(0, 5, -1), 0, 4).Draw(t, "m")
		ref := rapid.StringMatching(`[a-z]{0,3}`).Draw(t, "ref")
		r := base
		r.Metadata, r.Reference = m, ref
		copyOf := make(map[string]string, len(m))
		for k, v := range m {
			copyOf[k] = v
		}
		r2 := base
		r2.Metadata, r2.Reference = copyOf, ref
		if r.Fingerprint() != r2.Fingerprint() {
			t.Fatal("equal labels, different fingerprints")
		}
		if (len(m) == 0 && ref == "") != (r.Fingerprint() == base.Fingerprint()) {
			t.Fatalf("labels %v %q: fingerprint equal to the bare request's: %v", m, ref, r.Fingerprint() == base.Fingerprint())
		}
		// A value moved into the reference, or a key renamed, is another request.
		if len(m) > 0 {
			other := base
			other.Metadata = map[string]string{}
			for k, v := range m {
				other.Metadata[k+"x"] = v
			}
			other.Reference = ref
			if other.Fingerprint() == r.Fingerprint() {
				t.Fatal("renamed key, same fingerprint")
			}
		}
	})
	// Boundaries cannot be imitated inside a value.
	a := Request{Kind: KindDeposit, Metadata: map[string]string{"a": "1", "b": "2"}}
	b := Request{Kind: KindDeposit, Metadata: map[string]string{"a": "1:1:b:1:2"}}
	if a.Fingerprint() == b.Fingerprint() {
		t.Fatal("a value imitated a pair")
	}
}

// TestReferencesInBook: within one batch the first request with a
// reference takes it, applied or rejected; a later one under another id is
// rejected reference_already_used without it; replays are not.
func TestReferencesInBook(t *testing.T) {
	t.Parallel()
	from, to := uuid.New(), uuid.New()
	b := &Book{
		Precisions: map[string]int32{"USD": 2},
		Accounts: map[uuid.UUID]*Account{
			from: {ID: from, Currency: "USD", Balance: decimal.NewFromInt(5)},
			to:   {ID: to, Currency: "USD"},
		},
		Decided:    map[uuid.UUID]Transfer{},
		References: map[string]uuid.UUID{"taken": uuid.New()},
	}
	mk := func(amount int64, ref string) Request {
		return Request{ID: uuid.New(), Kind: KindTransfer, From: from, To: to, Amount: decimal.NewFromInt(amount), Currency: "USD", Reference: ref}
	}
	poor, second, taken, fine := mk(100, "r1"), mk(1, "r1"), mk(1, "taken"), mk(1, "r2")
	out, ch := b.Apply([]Request{poor, second, taken, fine, poor}, time.Time{})
	want := []Code{CodeInsufficientFunds, CodeReferenceAlreadyUsed, CodeReferenceAlreadyUsed, ""}
	for i, w := range want {
		if out[i].Reason() != w {
			t.Fatalf("request %d: %s, want %s", i, out[i].Reason(), w)
		}
	}
	if !out[4].Replayed || out[4].Conflict {
		t.Fatalf("replay: %+v", out[4])
	}
	refs := map[uuid.UUID]string{}
	for _, tr := range ch.Transfers {
		refs[tr.ID] = tr.Reference
	}
	if refs[poor.ID] != "r1" || refs[second.ID] != "" || refs[taken.ID] != "" || refs[fine.ID] != "r2" {
		t.Fatalf("stored references %v", refs)
	}
}
