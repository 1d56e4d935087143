package natsbus_test

import (
	"errors"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/wallet/wallet/internal/natsbus"
	"github.com/wallet/wallet/internal/transfer"
)

// TestLabelsRoundTrip: every kind carries metadata and a reference in its
// envelope, and reads them back unchanged, in one byte order whatever the
// map's.
func TestLabelsRoundTrip(t *testing.T) {
	t.Parallel()
	meta := map[string]string{"z": "last", "a.b-c_d": `quote " back \ <tag> & é 😀`, "empty": ""}
	d := decimal.RequireFromString
	for _, r := range []transfer.Request{
		{ID: uuid.New(), Kind: transfer.KindTransfer, From: uuid.New(), To: uuid.New(), Amount: d("1"), Currency: "USD"},
		{ID: uuid.New(), Kind: transfer.KindDeposit, To: uuid.New(), Amount: d("1"), Currency: "USD"},
		{ID: uuid.New(), Kind: transfer.KindWithdrawal, From: uuid.New(), Amount: d("1"), Currency: "USD"},
		{ID: uuid.New(), Kind: transfer.KindHold, From: uuid.New(), To: uuid.New(), Amount: d("1"), Currency: "USD", Timeout: time.Minute},
		{ID: uuid.New(), Kind: transfer.KindPost, HoldID: uuid.New()},
		{ID: uuid.New(), Kind: transfer.KindVoid, HoldID: uuid.New()},
		{ID: uuid.New(), Kind: transfer.KindReversal, Reverses: uuid.New(), Amount: d("0.5")},
	} {
		r.Metadata, r.Reference = meta, "ref «"+string(r.Kind)+"»"
		data, err := natsbus.EncodeRequest(r)
		if err != nil {
			t.Fatal(err)
		}
		again, _ := natsbus.EncodeRequest(r)
		if string(again) != string(data) {
			t.Fatalf("two encodings of one request: %s / %s", data, again)
		}
		got, err := natsbus.DecodeRequest(data)
		if err != nil {
			t.Fatalf("decode %s: %v", data, err)
		}
		if !maps.Equal(got.Metadata, meta) || got.Reference != r.Reference || got.Fingerprint() != r.Fingerprint() {
			t.Fatalf("round trip of %s: %+v", data, got)
		}
	}
	// Without labels the envelope is as before.
	plain := transfer.Request{ID: uuid.New(), Kind: transfer.KindDeposit, To: uuid.New(), Amount: d("1"), Currency: "USD"}
	if data, _ := natsbus.EncodeRequest(plain); strings.Contains(string(data), "metadata") || strings.Contains(string(data), "reference") {
		t.Fatalf("labels written for a request without them: %s", data)
	}
}

func TestLabelsPoison(t *testing.T) {
	t.Parallel()
	base := `{"v":1,"kind":"deposit","id":"` + tID + `","account_id":"` + tTo + `","amount":"1","currency":"USD"`
	for extra, want := range map[string]natsbus.Reason{
		`,"metadata":{"Upper":"x"}`:                            natsbus.ReasonInvalidMetadata,
		`,"metadata":{"k":1}`:                                  natsbus.ReasonInvalidMetadata,
		`,"metadata":{"k":null}`:                               natsbus.ReasonInvalidMetadata,
		`,"metadata":{"k":"1","k":"2"}`:                        natsbus.ReasonInvalidMetadata,
		`,"metadata":{"k":{"n":"x"}}`:                          natsbus.ReasonInvalidMetadata,
		`,"metadata":"k=v"`:                                    natsbus.ReasonInvalidMetadata,
		`,"metadata":["k"]`:                                    natsbus.ReasonInvalidFieldType,
		`,"metadata":{"k":"` + strings.Repeat("v", 513) + `"}`: natsbus.ReasonInvalidMetadata,
		`,"reference":""`:                                      natsbus.ReasonInvalidReference,
		`,"reference":"a\tb"`:                                  natsbus.ReasonInvalidReference,
		`,"reference":"` + strings.Repeat("r", 129) + `"`:      natsbus.ReasonInvalidReference,
		`,"reference":5`:                                       natsbus.ReasonInvalidFieldType,
		`,"reference":null`:                                    natsbus.ReasonInvalidFieldType,
		`,"metadata":{},"metadata":{}`:                         natsbus.ReasonDuplicateField,
		`,"metadata":{"k":"v"},"memo":"x"`:                     natsbus.ReasonUnknownField,
		`,"metadata":{"k":"v"}`:                                "",
		`,"metadata":{}`:                                       "",
		`,"metadata":null`:                                     "",
		`,"reference":"` + strings.Repeat("é", 128) + `"`:      "",
		`,"metadata":{"k":"v"},"reference":"r","attempt":"` + tFrom + `"`: "",
	} {
		_, err := natsbus.DecodeRequest([]byte(base + extra + "}"))
		if want == "" {
			if err != nil {
				t.Errorf("%s: %v", extra, err)
			}
			continue
		}
		var derr *natsbus.DecodeError
		if !errors.As(err, &derr) || derr.Reason != want {
			t.Errorf("%s: %v, want %s", extra, err, want)
		}
	}
}

// TestResultCarriesLabels: the outcome message shows the request's labels,
// and DecodeResult reads them back.
func TestResultCarriesLabels(t *testing.T) {
	t.Parallel()
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	tr := transfer.Transfer{ID: uuid.MustParse(tID), Kind: transfer.KindDeposit, Status: transfer.StatusApplied,
		To: uuid.MustParse(tTo), Amount: decimal.RequireFromString("1"), Currency: "USD", AcceptedAt: at, ProcessedAt: at,
		Metadata: map[string]string{"b": "2", "a": "1"}, Reference: "r-1"}
	data, err := natsbus.EncodeResult(natsbus.ResultFromTransfer(tr, map[string]int32{"USD": 2}))
	if err != nil || !strings.HasSuffix(string(data), `"metadata":{"a":"1","b":"2"},"reference":"r-1"}`) {
		t.Fatalf("result %s %v", data, err)
	}
	back, err := natsbus.DecodeResult(data)
	if err != nil || !maps.Equal(back.Metadata, tr.Metadata) || back.Reference != "r-1" {
		t.Fatalf("decode: %+v %v", back, err)
	}
	if _, err := natsbus.DecodeResult([]byte(strings.Replace(string(data), `"b":"2"`, `"b":"2","b":"3"`, 1))); err == nil {
		t.Fatal("a result with a repeated metadata key was read")
	}
}
