package task

import (
	"encoding/base64"
	"encoding/binary"
	"time"

	"github.com/google/uuid"

	"github.com/taskfn/taskfn/shared/errs"
)

// ErrBadCursor is returned for a page cursor that is malformed, or that was
// made for the other sort direction.
var ErrBadCursor = errs.New(errs.Invalid, "bad page cursor",
	"cursor is not valid; use the next_cursor of a previous page")

// Cursor is a keyset position in a list: the (created_at, id) of the last
// row of a page, and the direction it was read in.
//
// It is not signed: it only says where to resume, and List applies the
// caller's filters and visibility again, so a forged cursor shows nothing
// the caller could not list anyway.
type Cursor struct {
	CreatedAt time.Time
	ID        uuid.UUID
	Ascending bool
}

// Encoded layout: version, flags, created_at in Unix microseconds (the
// database's precision, so the position round-trips exactly), then the id.
const (
	cursorVersion = 1
	cursorLen     = 1 + 1 + 8 + 16
	flagAscending = 1
)

// Encode returns the cursor as an opaque URL-safe string.
func (c Cursor) Encode() string {
	var b [cursorLen]byte
	b[0] = cursorVersion
	if c.Ascending {
		b[1] = flagAscending
	}
	binary.BigEndian.PutUint64(b[2:10], uint64(c.CreatedAt.UnixMicro()))
	copy(b[10:], c.ID[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// Bounds of a created_at a cursor may carry; PostgreSQL's own limits are
// wider, but nothing outside these can come from a row of ours, and the
// check keeps out-of-range errors away from the database.
var (
	cursorMinTime = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
	cursorMaxTime = time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC)
)

// DecodeCursor parses a string made by Encode. Any malformed input gives
// an error that wraps ErrBadCursor.
func DecodeCursor(s string) (Cursor, error) {
	if len(s) != base64.RawURLEncoding.EncodedLen(cursorLen) {
		return Cursor{}, ErrBadCursor
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != cursorLen || b[0] != cursorVersion || b[1]&^flagAscending != 0 {
		return Cursor{}, ErrBadCursor
	}
	c := Cursor{
		CreatedAt: time.UnixMicro(int64(binary.BigEndian.Uint64(b[2:10]))).UTC(),
		Ascending: b[1]&flagAscending != 0,
	}
	copy(c.ID[:], b[10:])
	if c.CreatedAt.Before(cursorMinTime) || c.CreatedAt.After(cursorMaxTime) {
		return Cursor{}, ErrBadCursor
	}
	return c, nil
}
