// Package apispec checks real HTTP responses against openapi.yaml, for
// tests: the contract is a document clients read, so the tests hold the
// code to it.
package apispec

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
)

var (
	once sync.Once
	v    validator.Validator
	err  error
)

// path is openapi.yaml at the repository's root, found from this file so
// any test package can call Check.
func path() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "openapi.yaml")
}

func load() (validator.Validator, error) {
	once.Do(func() {
		var b []byte
		if b, err = os.ReadFile(path()); err != nil {
			return
		}
		doc, e := libopenapi.NewDocument(b)
		if e != nil {
			err = e
			return
		}
		val, errs := validator.NewValidator(doc)
		if len(errs) > 0 {
			err = errs[0]
			return
		}
		if ok, verrs := val.ValidateDocument(); !ok {
			err = &docError{verrs[0].Message + ": " + verrs[0].Reason}
			return
		}
		v = val
	})
	return v, err
}

type docError struct{ msg string }

func (e *docError) Error() string { return "openapi.yaml is not a valid OpenAPI document: " + e.msg }

// Check fails t when the response to method path (body already read into
// body) does not match openapi.yaml.
func Check(t testing.TB, method, path string, resp *http.Response, body []byte) {
	t.Helper()
	val, err := load()
	if err != nil {
		t.Fatal(err)
	}
	resp.Body = io.NopCloser(bytes.NewReader(body)) // the validator reads it
	req, _ := http.NewRequest(method, "http://taskfn.test"+path, nil)
	if ok, verrs := val.ValidateHttpResponse(req, resp); !ok {
		for _, ve := range verrs {
			t.Errorf("%s %s → %d does not match openapi.yaml: %s (%s)", method, path, resp.StatusCode, ve.Message, ve.Reason)
			for _, se := range ve.SchemaValidationErrors {
				t.Errorf("  schema: %s at %s", se.Reason, se.FieldPath)
			}
		}
		t.Logf("body: %s", body)
	}
}
