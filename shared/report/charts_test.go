package report_test

import (
	"bytes"
	"encoding/xml"
	"errors"
	"image/png"
	"io"
	"strconv"
	"testing"

	"github.com/taskfn/taskfn/shared/apispec"
	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/httpx/httpxtest"
	"github.com/taskfn/taskfn/shared/report"
	"github.com/taskfn/taskfn/shared/task"
)

// A status summary as svg or png is its charts: an image of the requested
// type, downloadable with its file name, counting only the requester's
// tasks; the period and the figure's texts are in the SVG.
func TestSummaryCharts(t *testing.T) {
	t.Parallel()
	e := newEnv(t, smallChunks)
	insert(t, e.db,
		row{title: "a", status: "todo", priority: "low", owner: "alice", created: day("2026-01-01T08:00:00Z")},
		row{title: "b", status: "done", priority: "high", owner: "alice", created: day("2026-01-01T23:59:59Z"),
			completed: ptr(day("2026-01-03T12:00:00Z"))},
		row{title: "c", status: "blocked", priority: "high", owner: "bob", created: day("2026-01-02T00:00:00Z")},
	)
	tests := []struct {
		name, body, contentType, ext string
		check                        func(t *testing.T, body []byte)
	}{
		{"png", `{"kind":"status_summary","format":"png","period":{"from":"2026-01-01","to":"2026-01-31"}}`, "image/png", "png",
			func(t *testing.T, body []byte) {
				img, err := png.Decode(bytes.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				if b := img.Bounds(); b.Dx() != 1056 || b.Dy() != 960 {
					t.Errorf("size %v", b)
				}
			}},
		{"svg over a year", `{"kind":"status_summary","format":"svg","period":{"from":"2025-01-01","to":"2026-01-01"}}`, "image/svg+xml", "svg",
			func(t *testing.T, body []byte) {
				dec := xml.NewDecoder(bytes.NewReader(body))
				for {
					_, err := dec.Token()
					if errors.Is(err, io.EOF) {
						break
					}
					if err != nil {
						t.Fatalf("not well-formed: %v", err)
					}
				}
				for _, want := range []string{"Status summary", "2025-01-01 to 2026-01-01 (UTC days)", "the requester&#39;s tasks", "2 tasks now",
					"Cumulative flow", "Created and completed per day", "in_progress", "completed"} {
					if !bytes.Contains(body, []byte(want)) {
						t.Errorf("no %q in the SVG", want)
					}
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tok := e.token(t, "alice", auth.RoleMember)
			id := e.request(t, tok, tc.body)
			e.build(t, id)
			v := e.view(t, tok, id)
			if v.Status != report.StatusSucceeded || v.ContentType != tc.contentType || *v.Rows != 2 {
				t.Fatalf("report %+v", v)
			}
			resp, body := httpxtest.Call(t, nil, "GET", e.url+v.ContentURL, tok, "")
			apispec.Check(t, "GET", v.ContentURL, resp, body)
			status, h := resp.StatusCode, resp.Header
			if status != 200 || h.Get("Content-Type") != tc.contentType ||
				h.Get("Content-Disposition") != `attachment; filename="status_summary-`+id.String()+`.`+tc.ext+`"` {
				t.Fatalf("content: %d %v", status, h)
			}
			if h.Get("Content-Length") != strconv.Itoa(len(body)) || int64(len(body)) != *v.SizeBytes {
				t.Errorf("%d bytes, the report says %d", len(body), *v.SizeBytes)
			}
			tc.check(t, body)
		})
	}
}

// A worker wired without the renderers (a build-report deployed without
// them) leaves xlsx and chart reports to a later delivery: a retryable
// error, the report neither failed nor succeeded.
func TestWorkerWithoutRenderers(t *testing.T) {
	t.Parallel()
	e := newEnv(t, smallChunks)
	tasks, err := task.NewStore(e.db)
	if err != nil {
		t.Fatal(err)
	}
	w, err := report.NewWorker(e.store, tasks, smallChunks) // no Render
	if err != nil {
		t.Fatal(err)
	}
	tok := e.token(t, "alice", auth.RoleMember)
	for _, body := range []string{`{"kind":"tasks_export","format":"xlsx"}`, `{"kind":"status_summary","format":"svg"}`} {
		id := e.request(t, tok, body)
		if err := w.Build(t.Context(), id); err == nil {
			t.Errorf("%s: built without a renderer", body)
		}
		if v := e.view(t, tok, id); v.Status == report.StatusFailed || v.Status == report.StatusSucceeded {
			t.Errorf("%s: %+v", body, v)
		}
	}
}
