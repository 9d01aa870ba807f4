package task_test

import (
	"encoding/base64"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/taskfn/taskfn/shared/httpx/httpxtest"
	"github.com/taskfn/taskfn/shared/task"
)

// FuzzDecodeCursor: a cursor comes back from the client, so any string
// must decode to a position Encode would have made (the same string, a
// time within the bounds the database can compare) or to ErrBadCursor, a
// 400. Each input is tried as given and, to reach past the base64 layer,
// as the bytes a cursor encodes.
func FuzzDecodeCursor(f *testing.F) {
	id := uuid.MustParse("0190a4c2-7b1e-7c3d-9e4f-123456789abc")
	valid := task.Cursor{CreatedAt: time.Date(2026, 5, 1, 10, 11, 12, 123456000, time.UTC), ID: id}.Encode()
	raw, _ := base64.RawURLEncoding.DecodeString(valid)
	for _, s := range []string{
		valid, task.Cursor{CreatedAt: time.Unix(0, 0), Ascending: true}.Encode(),
		task.Cursor{CreatedAt: time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC), ID: id}.Encode(),
		"", "not a cursor", valid[:len(valid)-1], valid + "A", base64.URLEncoding.EncodeToString(raw),
		base64.StdEncoding.EncodeToString(append([]byte{0xfb, 0xff}, raw[2:]...)), valid[:len(valid)-1] + "B",
		string(raw), "\x01\x00\x7f\xff\xff\xff\xff\xff\xff\xff",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, in := range []string{s, base64.RawURLEncoding.EncodeToString([]byte(s))} {
			c, err := task.DecodeCursor(in)
			if err != nil {
				if !errors.Is(err, task.ErrBadCursor) {
					t.Fatalf("DecodeCursor(%q): %v, want ErrBadCursor", in, err)
				}
				httpxtest.Want4xx(t, err, in)
				continue
			}
			if got := c.Encode(); got != in {
				t.Fatalf("DecodeCursor(%q) = %+v, which encodes as %q: two strings for one position", in, c, got)
			}
			if y := c.CreatedAt.Year(); y < 1970 || y > 9999 || c.CreatedAt.Location() != time.UTC {
				t.Fatalf("DecodeCursor(%q): created_at %v out of bounds", in, c.CreatedAt)
			}
		}
	})
}
