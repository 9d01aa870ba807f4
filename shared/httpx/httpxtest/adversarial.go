package httpxtest

import (
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// Fill returns head, then unit repeated, then tail: the longest such
// document of at most size bytes. It builds the adversarial bodies of the
// tests that hold each route to a bounded answer and a bounded cost
// (issue #21): Fill(`{"labels":[`, `"",`, `""]}`, httpx.MaxBody) is a
// request of 349,524 blank labels.
func Fill(head, unit, tail string, size int) string {
	n := (size - len(head) - len(tail)) / len(unit)
	var b strings.Builder
	b.Grow(len(head) + n*len(unit) + len(tail))
	b.WriteString(head)
	for range n {
		b.WriteString(unit)
	}
	b.WriteString(tail)
	return b.String()
}

// Nest returns head, then arrays nested as deep as fit in size bytes,
// then tail: well-formed JSON, deeper than any decoder should follow.
func Nest(head, tail string, size int) string {
	n := (size - len(head) - len(tail)) / 2
	return head + strings.Repeat("[", n) + strings.Repeat("]", n) + tail
}

// Keys returns head, then distinct keys named prefix0, prefix1, … each
// followed by value and a comma, then tail: at most size bytes of an
// object with as many members as fit.
func Keys(head, prefix, value, tail string, size int) string {
	var b strings.Builder
	b.Grow(size)
	b.WriteString(head)
	for i := 0; ; i++ {
		key := `"` + prefix + strconv.Itoa(i) + `":` + value + ","
		if b.Len()+len(key)+len(tail) > size {
			break
		}
		b.WriteString(key)
	}
	s := strings.TrimSuffix(b.String(), ",")
	return s + tail
}

// Allocated serves one request built by newReq to h through a recorder
// and returns the recorder and how many bytes the heap allocated while h
// ran (runtime.MemStats.TotalAlloc): the least of a few runs, after one
// run that warms up what is done once per process. TotalAlloc counts every
// goroutine, so the caller must not run in parallel with other tests; the
// least of several runs drops what a background goroutine allocated
// meanwhile. The requests are built outside the measure, so a body the
// handler reads is counted as it reads it, not as the test made it.
func Allocated(t testing.TB, h http.Handler, newReq func() *http.Request) (*httptest.ResponseRecorder, uint64) {
	t.Helper()
	const runs = 3
	reqs := make([]*http.Request, runs+1)
	recs := make([]*httptest.ResponseRecorder, runs+1)
	for i := range reqs {
		reqs[i], recs[i] = newReq(), httptest.NewRecorder()
	}
	h.ServeHTTP(recs[0], reqs[0])
	least := ^uint64(0)
	var ms runtime.MemStats
	for i := 1; i <= runs; i++ {
		runtime.GC()
		runtime.ReadMemStats(&ms)
		before := ms.TotalAlloc
		h.ServeHTTP(recs[i], reqs[i])
		runtime.ReadMemStats(&ms)
		least = min(least, ms.TotalAlloc-before)
	}
	return recs[runs], least
}

// Bounds are what one request may cost a route, whatever its body.
type Bounds struct {
	Reply int    // bytes of the response body
	Alloc uint64 // bytes the heap allocated serving it
}

// BoundsFor are the bounds of a route that reads at most maxBody bytes:
// a reply of at most 16 KiB (a problem lists at most errs.MaxFieldErrors
// fields and quotes little of the request), and an allocation of at most
// 16 times maxBody (reading and decoding a body costs a few times its
// size, whatever it holds; a body must not multiply its cost by the
// number of elements it holds). Measured with go1.26 on amd64: at worst
// 9.0 MiB for a 1 MiB body (a 1 MiB due_at to POST /tasks), 0.55 MiB for a
// 64 KiB event; before the token limit, 114 MiB for 1 MiB of blank labels.
func BoundsFor(maxBody int64) Bounds {
	return Bounds{Reply: 16 << 10, Alloc: 16 * uint64(maxBody)}
}

// Case is one adversarial request and the status its reply must have.
type Case struct {
	Name    string
	Request func() *http.Request
	Status  int
}

// CheckBounded serves each case to h and fails t when the reply has
// another status, is an error that is not a problem, or is larger than
// b.Reply, or when serving it allocated more than b.Alloc. check, when not
// nil, sees each reply too (to hold it to openapi.yaml, say). It logs
// every figure. It runs the cases one after another, and t must not be
// parallel: the allocations are measured for the whole process.
func CheckBounded(t *testing.T, h http.Handler, b Bounds, cases []Case, check func(*testing.T, Case, *httptest.ResponseRecorder)) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			rec, alloc := Allocated(t, h, c.Request)
			t.Logf("%d, %d-byte reply, %.2f MiB allocated", rec.Code, rec.Body.Len(), float64(alloc)/(1<<20))
			if rec.Code != c.Status {
				t.Errorf("status %d, want %d: %.300s", rec.Code, c.Status, rec.Body)
			}
			if ct := rec.Header().Get("Content-Type"); rec.Code >= 400 && ct != "application/problem+json" {
				t.Errorf("content type %q, want a problem", ct)
			}
			if rec.Body.Len() > b.Reply {
				t.Errorf("reply of %d bytes, want at most %d: %.300s…", rec.Body.Len(), b.Reply, rec.Body)
			}
			if alloc > b.Alloc {
				t.Errorf("allocated %d bytes, want at most %d", alloc, b.Alloc)
			}
			if check != nil {
				check(t, c, rec)
			}
		})
	}
}
