package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"

	"github.com/google/uuid"

	"github.com/wallet/wallet/internal/transfer"
	"github.com/wallet/wallet/internal/transfer/wire"
)

// accountRequest is the body of POST /v1/accounts or PATCH
// /v1/accounts/{id}. Metadata values are nil where the body had null,
// which a patch uses to remove a key.
type accountRequest struct {
	ID       uuid.UUID
	Currency string
	Metadata map[string]*string
}

// decodeAccountRequest reads an account body with the fields named:
// strictly, like readObject (one object, known keys only, each once,
// string or null values), plus "metadata", an object of string or null
// values. Account bodies are rare next to submissions, so encoding/json's
// tokenizer serves, with the duplicate and case checks it lacks added here.
func decodeAccountRequest(body []byte, fields ...string) (accountRequest, *Problem) {
	var out accountRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if len(bytes.TrimSpace(body)) == 0 {
		return out, problem(CodeMalformedJSON, "The request body is empty; a JSON object is required.")
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return out, problem(CodeMalformedJSON, "The request body must be a JSON object.")
	}
	seen := map[string]bool{}
	for dec.More() {
		key, p := objectKey(dec)
		if p != nil {
			return out, p
		}
		known := false
		for _, f := range fields {
			known = known || f == key
		}
		if !known {
			name := clip(key)
			return out, fieldProblem(CodeUnknownField, name, "Unknown field "+strconv.Quote(name)+".")
		}
		if seen[key] {
			return out, fieldProblem(CodeDuplicateField, key, "Field "+strconv.Quote(key)+" appears more than once.")
		}
		seen[key] = true
		if key == "metadata" {
			m, p := readMetadataObject(dec)
			if p != nil {
				return out, p
			}
			out.Metadata = m
			continue
		}
		s, p := stringOrNull(dec, key)
		if p != nil {
			return out, p
		}
		switch key {
		case "id":
			if s != "" {
				id, ok := transfer.ParseID(s)
				if !ok {
					return out, fieldProblem(CodeInvalidField, key,
						"Field \"id\" must be a UUID such as \"3f1c9d2e-8b4a-4c1e-9f2a-6d5b7e8c9a0b\".")
				}
				out.ID = id
			}
		case "currency":
			out.Currency = s
		}
	}
	if _, err := dec.Token(); err != nil {
		return out, malformed(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return out, problem(CodeMalformedJSON, "Malformed JSON: unexpected data after the JSON object.")
	}
	return out, nil
}

// readMetadataObject reads the value of "metadata": an object whose values
// are strings or null, each key once.
func readMetadataObject(dec *json.Decoder) (map[string]*string, *Problem) {
	tok, err := dec.Token()
	if err != nil {
		return nil, malformed(err)
	}
	if tok != json.Delim('{') {
		return nil, fieldProblem(transfer.CodeInvalidMetadata, "metadata", "Field \"metadata\" must be an object of string values.")
	}
	m := map[string]*string{}
	for dec.More() {
		key, p := objectKey(dec)
		if p != nil {
			return nil, p
		}
		field := "metadata." + clip(key)
		if _, dup := m[key]; dup {
			return nil, fieldProblem(transfer.CodeInvalidMetadata, field, "Metadata key "+strconv.Quote(clip(key))+" appears more than once.")
		}
		tok, err := dec.Token()
		if err != nil {
			return nil, malformed(err)
		}
		switch v := tok.(type) {
		case string:
			m[key] = &v
		case nil:
			m[key] = nil
		default:
			return nil, fieldProblem(transfer.CodeInvalidMetadata, field, "Metadata values must be strings.")
		}
	}
	if _, err := dec.Token(); err != nil {
		return nil, malformed(err)
	}
	return m, nil
}

func objectKey(dec *json.Decoder) (string, *Problem) {
	tok, err := dec.Token()
	if err != nil {
		return "", malformed(err)
	}
	key, ok := tok.(string)
	if !ok {
		return "", problem(CodeMalformedJSON, "Malformed JSON: expected a quoted key.")
	}
	return key, nil
}

// stringOrNull reads a value that must be a string or null ("").
func stringOrNull(dec *json.Decoder, field string) (string, *Problem) {
	tok, err := dec.Token()
	if err != nil {
		return "", malformed(err)
	}
	switch v := tok.(type) {
	case string:
		return v, nil
	case nil:
		return "", nil
	case json.Number:
		return "", typeProblem(field, wire.Number)
	case bool:
		return "", typeProblem(field, wire.Bool)
	case json.Delim:
		if v == '[' {
			return "", typeProblem(field, wire.Array)
		}
		return "", typeProblem(field, wire.Object)
	}
	return "", typeProblem(field, wire.Object)
}

func malformed(err error) *Problem {
	return problem(CodeMalformedJSON, "Malformed JSON: "+err.Error()+".")
}

// metadataValues is a metadata object whose values must all be strings, as
// on creation: null is only a patch's way of removing a key.
func metadataValues(m map[string]*string) (map[string]string, *Problem) {
	if m == nil {
		return nil, nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		if v == nil {
			return nil, fieldProblem(transfer.CodeInvalidMetadata, "metadata."+clip(k), "Metadata values must be strings.")
		}
		out[k] = *v
	}
	if err := transfer.ValidateMetadata(out); err != nil {
		return nil, metadataProblem(err)
	}
	return out, nil
}

// metadataProblem answers a metadata limit broken: 400 invalid_metadata.
func metadataProblem(err error) *Problem {
	var e *transfer.Error
	if errors.As(err, &e) {
		return fieldProblem(e.Code, "metadata", sentence(e))
	}
	return fieldProblem(transfer.CodeInvalidMetadata, "metadata", "The metadata is not valid.")
}
