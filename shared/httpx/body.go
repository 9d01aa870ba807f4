package httpx

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
)

// MaxBody is the largest request body any function reads (1 MiB).
const MaxBody int64 = 1 << 20

// ReadBody returns the request body after checking its media type against
// accepted (the first is named in the 415 answer) and its size against
// MaxBody. Nothing is decoded here, so callers choose strict decoding.
func ReadBody(w http.ResponseWriter, r *http.Request, accepted ...string) ([]byte, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	ok := false
	if err == nil {
		for _, a := range accepted {
			if mt == a {
				ok = true
				break
			}
		}
	}
	if !ok {
		return nil, UnsupportedMediaType(accepted[0])
	}
	if r.ContentLength > MaxBody {
		return nil, TooLarge(MaxBody)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, TooLarge(MaxBody)
		}
		return nil, BadRequest("the request body could not be read")
	}
	return body, nil
}

// WriteJSON writes v as JSON with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Only our own types reach here; a marshal failure is a bug.
		WriteProblem(w, nil, Internal())
		return
	}
	WriteRawJSON(w, status, append(b, '\n'))
}

// WriteRawJSON writes b, a JSON document the caller encoded, with status,
// ending it with a newline if it has none. b is only read, so it may be
// shared; a caller that owns b and ends it with the newline saves a write
// (a system call when b is larger than the connection's buffer).
func WriteRawJSON(w http.ResponseWriter, status int, b []byte) {
	end := len(b) > 0 && b[len(b)-1] == '\n'
	n := len(b)
	if !end {
		n++
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(n))
	w.WriteHeader(status)
	_, _ = w.Write(b)
	if !end {
		_, _ = w.Write(newline)
	}
}

var newline = []byte{'\n'}
