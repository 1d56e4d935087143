package wire

import (
	"testing"
)

func TestScannerStrings(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		`"plain"`:           "plain",
		`"a\"b\\c\/d"`:      `a"b\c/d`,
		`"\n\t\r\b\f"`:      "\n\t\r\b\f",
		`"\u00e9t\u00E9"`:   "été",
		`"\ud83d\ude00"`:    "😀",
		`"\ud83d"`:          "\uFFFD",
		`"\ud83d\u0041"`:    "\uFFFDA",
		`"\ude00"`:          "\uFFFD",
		"\"caf\xc3\xa9\"":   "café",
		"\"bad \xff byte\"": "bad \uFFFD byte",
	} {
		s := scanner{b: []byte(in)}
		got, ok := s.str()
		if !ok || string(got) != want || s.i != len(in) {
			t.Errorf("%s: got %q ok=%v at %d; want %q", in, got, ok, s.i, want)
		}
	}
}

func TestReadMetadata(t *testing.T) {
	t.Parallel()
	rd := Reader{Names: []string{"id", FieldMetadata, "reference"}}
	vals := make([]Value, 3)
	if _, err := rd.Read([]byte(`{"metadata":{"order":"A-1","n\u0061me":"x"},"reference":"r","id":"i"}`), vals); err != nil {
		t.Fatal(err)
	}
	if vals[1].Kind != Object || vals[1].Meta["order"] != "A-1" || vals[1].Meta["name"] != "x" || len(vals[1].Meta) != 2 ||
		string(vals[0].Text) != "i" || string(vals[2].Text) != "r" {
		t.Fatalf("read %+v", vals)
	}
	for body, want := range map[string]ErrorKind{
		`{"metadata":{"a":1}}`:              BadMetadata,
		`{"metadata":{"a":null}}`:           BadMetadata,
		`{"metadata":{"a":{"b":"c"}}}`:      BadMetadata,
		`{"metadata":{"a":"1","a":"2"}}`:    BadMetadata,
		`{"metadata":{"a":"1",}}`:           Malformed,
		`{"metadata":{"a":"1"}`:             Malformed,
		`{"metadata":{"a":"1"},"id":"x"} x`: Malformed,
		`{"metadata":{},"metadata":{}}`:     Duplicate,
	} {
		vals := make([]Value, 3)
		_, err := rd.Read([]byte(body), vals)
		if err == nil || err.Kind != want {
			t.Errorf("%s: %v, want kind %d", body, err, want)
		}
	}
	// A metadata value that is not an object stops nothing: the caller
	// reports its type.
	vals = make([]Value, 3)
	if _, err := rd.Read([]byte(`{"metadata":"x","id":"i"}`), vals); err != nil || vals[1].Kind != String || string(vals[0].Text) != "i" {
		t.Fatalf("string metadata: %+v %v", vals, err)
	}
	// An array stops the read there, as any nested value does.
	vals = make([]Value, 3)
	if _, err := rd.Read([]byte(`{"metadata":["x"],"id":"i"}`), vals); err != nil || vals[1].Kind != Array || vals[0].Kind != Absent {
		t.Fatalf("array metadata: %+v %v", vals, err)
	}
}

func TestReadKeepUnknown(t *testing.T) {
	t.Parallel()
	rd := Reader{Names: []string{"id"}, KeepUnknown: true}
	vals := make([]Value, 1)
	unknown, err := rd.Read([]byte(`{"b":1,"id":"x","a":"y"}`), vals)
	if err != nil || len(unknown) != 2 || unknown[0] != "b" || unknown[1] != "a" || string(vals[0].Text) != "x" {
		t.Fatalf("%v %v %+v", unknown, err, vals)
	}
	if _, err := rd.Read([]byte(`{"b":1,"b":2}`), vals); err == nil || err.Kind != Duplicate || err.Field != "b" {
		t.Fatalf("duplicate unknown key: %v", err)
	}
	if _, err := rd.Read([]byte(`{"b":[1]}`), vals); err == nil || err.Kind != Nested || err.Field != "b" {
		t.Fatalf("nested unknown value: %v", err)
	}
}
