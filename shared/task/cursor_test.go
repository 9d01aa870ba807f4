package task_test

import (
	"encoding/base64"
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/taskfn/taskfn/shared/task"
)

func TestCursorRoundTrip(t *testing.T) {
	t.Parallel()
	id := uuid.MustParse("0190a4c2-7b1e-7c3d-9e4f-123456789abc")
	tests := []struct {
		name string
		in   task.Cursor
		want task.Cursor
	}{
		{
			name: "newest first",
			in:   task.Cursor{CreatedAt: time.Date(2026, 5, 1, 10, 11, 12, 123456000, time.UTC), ID: id},
			want: task.Cursor{CreatedAt: time.Date(2026, 5, 1, 10, 11, 12, 123456000, time.UTC), ID: id},
		},
		{
			name: "oldest first",
			in:   task.Cursor{CreatedAt: time.Date(2026, 5, 1, 10, 11, 12, 1000, time.UTC), ID: id, Ascending: true},
			want: task.Cursor{CreatedAt: time.Date(2026, 5, 1, 10, 11, 12, 1000, time.UTC), ID: id, Ascending: true},
		},
		{
			// The database holds microseconds; anything finer is not part
			// of a position.
			name: "nanoseconds dropped",
			in:   task.Cursor{CreatedAt: time.Date(2026, 5, 1, 0, 0, 0, 999, time.UTC), ID: id},
			want: task.Cursor{CreatedAt: time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC), ID: id},
		},
		{
			name: "other zone, same instant",
			in:   task.Cursor{CreatedAt: time.Date(2026, 5, 1, 12, 0, 0, 5000, time.FixedZone("CEST", 2*3600)), ID: id},
			want: task.Cursor{CreatedAt: time.Date(2026, 5, 1, 10, 0, 0, 5000, time.UTC), ID: id},
		},
		{
			name: "nil id",
			in:   task.Cursor{CreatedAt: time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)},
			want: task.Cursor{CreatedAt: time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := tt.in.Encode()
			if url.QueryEscape(s) != s {
				t.Errorf("Encode() = %q, not URL-safe", s)
			}
			got, err := task.DecodeCursor(s)
			if err != nil {
				t.Fatalf("DecodeCursor(%q): %v", s, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeCursorRejectsMalformed(t *testing.T) {
	t.Parallel()
	valid := task.Cursor{CreatedAt: time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC), ID: uuid.New()}.Encode()
	raw, err := base64.RawURLEncoding.DecodeString(valid)
	if err != nil {
		t.Fatal(err)
	}
	with := func(i int, b byte) string {
		c := append([]byte(nil), raw...)
		c[i] = b
		return base64.RawURLEncoding.EncodeToString(c)
	}
	tests := []struct {
		name string
		in   string
	}{
		{"empty", ""},
		{"garbage", "not a cursor"},
		{"truncated", valid[:len(valid)-1]},
		{"extended", valid + "A"},
		{"padded", base64.URLEncoding.EncodeToString(raw)},
		{"standard alphabet", base64.StdEncoding.EncodeToString(append([]byte{0xfb, 0xff}, raw[2:]...))},
		{"unknown version", with(0, 2)},
		{"unknown flag", with(1, 2)},
		{"before 1970", with(2, 0xff)},
		{"non-canonical trailing bits", valid[:len(valid)-1] + "B"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if c, err := task.DecodeCursor(tt.in); !errors.Is(err, task.ErrBadCursor) {
				t.Errorf("DecodeCursor(%q) = %+v, %v; want ErrBadCursor", tt.in, c, err)
			}
		})
	}
}
