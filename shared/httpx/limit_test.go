package httpx

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/taskfn/taskfn/shared/apispec"
	"github.com/taskfn/taskfn/shared/errs"
)

func TestLimitJSON(t *testing.T) {
	t.Parallel()
	tokens := func(n int) string { // an array of n-1 numbers: n tokens
		return "[" + strings.TrimSuffix(strings.Repeat("0,", n-1), ",") + "]"
	}
	key := func(n int) string { return `{"` + strings.Repeat("k", n) + `":0}` }
	tests := []struct {
		name string
		body string
		ok   bool
	}{
		{"empty", ``, true},
		{"a task", `{"title":"x","labels":["a","b"],"due_at":null,"priority":"high"}`, true},
		{"as many tokens as allowed", tokens(MaxJSONTokens), true},
		{"one token more", tokens(MaxJSONTokens + 1), false},
		{"closing brackets are not counted", strings.Repeat("[", MaxJSONTokens) + strings.Repeat("]", MaxJSONTokens), true},
		{"keys are counted", `{` + strings.TrimSuffix(strings.Repeat(`"a":0,`, MaxJSONTokens/2+1), ",") + `}`, false},
		{"a key as long as allowed", key(MaxJSONKey), true},
		{"a key one byte longer", key(MaxJSONKey + 1), false},
		{"a long key, space before the colon", `{"` + strings.Repeat("k", MaxJSONKey+1) + `" : 0}`, false},
		{"a long value", `{"k":"` + strings.Repeat("v", 1<<20) + `"}`, true},
		{"a long array of strings", `[` + strings.Repeat(`"",`, MaxJSONTokens) + `""]`, false},
		{"escaped quotes stay inside the string", `["` + strings.Repeat(`\",`, MaxJSONTokens) + `"]`, true},
		{"not JSON, one run of letters", strings.Repeat("a", 1<<20), true},
		{"not JSON, an unterminated string", `{"a":"` + strings.Repeat(`\`, 7), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := LimitJSON([]byte(tc.body))
			if (err == nil) != tc.ok {
				t.Fatalf("err %v, want ok %v", err, tc.ok)
			}
			if p := AsProblem(err); err != nil && (p == nil || p.Status != 400) {
				t.Errorf("err %v, want a 400 problem", err)
			}
		})
	}
}

// LimitJSON allocates nothing: what it guards against is allocation. Not
// parallel, as AllocsPerRun requires.
func TestLimitJSONAllocatesNothing(t *testing.T) {
	body := []byte(`{"labels":[` + strings.Repeat(`"",`, 1<<18) + `""]}`)
	if n := fewestAllocs(func() { _ = LimitJSON(body) }); n > 3 {
		t.Errorf("%v allocations, want only the problem's", n)
	}
	body = []byte(`{"title":"` + strings.Repeat("a", 1<<20) + `"}`)
	if n := fewestAllocs(func() { _ = LimitJSON(body) }); n != 0 {
		t.Errorf("%v allocations, want none", n)
	}
}

// fewestAllocs is the least of several AllocsPerRun of f. AllocsPerRun
// counts every allocation of the process while f runs, so anything else
// running (the race detector's runtime, a test's leftover goroutine) can
// only add to it: under -race one run in six counted one more (make test).
func fewestAllocs(f func()) float64 {
	least := testing.AllocsPerRun(10, f)
	for range 4 {
		least = min(least, testing.AllocsPerRun(10, f))
	}
	return least
}

// FuzzScanJSON holds scanJSON to encoding/json: on valid JSON it counts
// what Decoder.Token returns, less the closing brackets.
func FuzzScanJSON(f *testing.F) {
	for _, s := range []string{
		`{}`, `[]`, `0`, `-1.5e+10`, `"a\"b"`, `"\\"`, `"\u00e9"`, `true`, `null`,
		`{"a":[1,"two",{"three":null}],"b":false}`, ` [ 1 , 2 ] `, `{"":""}`, `[[[]]]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if !json.Valid(body) {
			return
		}
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		want := 0
		for {
			tok, err := dec.Token()
			if err != nil {
				break
			}
			if d, ok := tok.(json.Delim); ok && (d == ']' || d == '}') {
				continue
			}
			want++
		}
		if got, long := scanJSON(body, 1<<30, 1<<30); got != want || long {
			t.Errorf("scanJSON(%q) = %d, %v; Decoder.Token gives %d", body, got, long, want)
		}
	})
}

// A problem's detail may quote the request; what is written is cut short,
// on a rune boundary, and the problem itself is left as it was.
func TestProblemDetailClipped(t *testing.T) {
	t.Parallel()
	for _, n := range []int{maxDetail - 1, maxDetail, maxDetail + 1, 1 << 20} {
		detail := strings.Repeat("é", n/2) + strings.Repeat("k", n%2)
		p := BadRequest(detail)
		rec := httptest.NewRecorder()
		WriteProblem(rec, httptest.NewRequest("POST", "/tasks", nil), p)
		var got Problem
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		switch {
		case len(detail) <= maxDetail && got.Detail != detail:
			t.Errorf("%d bytes: detail changed", len(detail))
		case len(detail) > maxDetail && (len(got.Detail) > maxDetail || !utf8.ValidString(got.Detail) || !strings.HasSuffix(got.Detail, "…")):
			t.Errorf("%d bytes: detail of %d bytes written, %.40q…", len(detail), len(got.Detail), got.Detail)
		}
		if p.Detail != detail {
			t.Error("WriteProblem changed the shared problem value")
		}
	}
}

// ProblemOf lists at most errs.MaxFieldErrors fields, however the
// validation error was built, and counts the rest.
func TestProblemOfCapsFields(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name            string
		err             error
		listed, omitted int
	}{
		{"through errs.Fields", errs.Validation(make([]errs.FieldError, 70)...), errs.MaxFieldErrors, 20},
		{"built by hand", &errs.ValidationError{Fields: make([]errs.FieldError, 70), Omitted: 5}, errs.MaxFieldErrors, 25},
		{"a few", errs.Validation(make([]errs.FieldError, 3)...), 3, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := ProblemOf(context.Background(), tc.err)
			if len(p.Errors) != tc.listed || p.ErrorsOmitted != tc.omitted {
				t.Errorf("%d listed, %d omitted; want %d, %d", len(p.Errors), p.ErrorsOmitted, tc.listed, tc.omitted)
			}
		})
	}
}

// A problem that lists 50 fields and counts the rest is what openapi.yaml
// says: no route can give one today (a task has 25 errors at most), so
// the tests of the routes never show it one.
func TestOmittedMatchesOpenAPI(t *testing.T) {
	t.Parallel()
	fields := make([]errs.FieldError, 70)
	for i := range fields {
		fields[i] = errs.FieldError{Field: fmt.Sprintf("labels[%d]", i), Detail: "must not be blank"}
	}
	rec := httptest.NewRecorder()
	r := httptest.NewRequest("POST", "/tasks", nil)
	WriteProblem(rec, r, ProblemOf(r.Context(), errs.Validation(fields...)))
	apispec.Check(t, "POST", "/tasks", rec.Result(), rec.Body.Bytes())
	if !strings.Contains(rec.Body.String(), `"errors_omitted":20`) {
		t.Errorf("no errors_omitted: %s", rec.Body)
	}
}
