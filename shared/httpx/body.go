package httpx

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
)

// MaxBody is the largest request body any function reads (1 MiB).
const MaxBody int64 = 1 << 20

// ReadBody returns the request body after checking its media type against
// accepted (the first is named in the 415 answer), its size against
// MaxBody and, for JSON, its tokens against MaxJSONTokens. Nothing is
// decoded here, so callers choose strict decoding.
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
	body, err := ReadLimited(w, r, MaxBody)
	if err != nil {
		return nil, err
	}
	if IsJSON(mt) {
		if err := LimitJSON(body); err != nil {
			return nil, err
		}
	}
	return body, nil
}

// ReadLimited returns the request body, or a 413 problem when it is longer
// than limit. A body whose length is declared is read into one buffer of
// that size, not grown to it (which allocates about twice as much).
func ReadLimited(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, TooLarge(limit)
	}
	var buf bytes.Buffer
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength) + bytes.MinRead) // room for the read that finds EOF
	}
	if _, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, limit)); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, TooLarge(limit)
		}
		return nil, BadRequest("the request body could not be read")
	}
	return buf.Bytes(), nil
}

// IsJSON reports whether the media type mt is JSON: application/json or
// a +json type (application/merge-patch+json, application/cloudevents+json).
func IsJSON(mt string) bool {
	return mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}

// Limits of a JSON body's shape, whatever its size. Decoding costs about
// 100 bytes a token whatever the token, so a 1 MiB body of 349,000 blank
// strings cost 31 MiB to decode into a []string before anything looked at
// it; 1,000 tokens cost 100 KiB. Our largest bodies hold a few dozen (a
// task with 20 labels, an event with its task snapshot) and our longest
// key is 20 bytes.
const (
	// MaxJSONTokens bounds the tokens: keys, values, opening brackets.
	MaxJSONTokens = 1000
	// MaxJSONKey bounds an object key, in bytes as sent: an unknown key is
	// quoted in the 400 that refuses it.
	MaxJSONKey = 256
)

// LimitJSON returns a 400 problem when body holds more than MaxJSONTokens
// JSON tokens or a key longer than MaxJSONKey. It allocates nothing and
// reads no further than where a limit is passed, so a body of a million
// tokens costs what its first thousand do. In a body that is not JSON it
// counts what looks like tokens, and leaves it to the decoder to say what
// is wrong with it.
func LimitJSON(body []byte) error { return limitJSON(body, MaxJSONTokens, tooManyTokens) }

// tooManyTokens is LimitJSON's refusal, made once: formatting it per call
// allocated.
var tooManyTokens = tooMany(MaxJSONTokens)

func tooMany(maxTokens int) string {
	return fmt.Sprintf("the body holds more than %d JSON tokens (keys and values)", maxTokens)
}

// LimitJSONTokens is LimitJSON with a bound of maxTokens, for a body that
// holds many of our bodies (a batch of CloudEvents).
func LimitJSONTokens(body []byte, maxTokens int) error { return limitJSON(body, maxTokens, "") }

// limitJSON is LimitJSON at maxTokens; refusal is its detail ("": made
// when needed).
func limitJSON(body []byte, maxTokens int, refusal string) error {
	tokens, longKey := scanJSON(body, maxTokens, MaxJSONKey)
	switch {
	case tokens > maxTokens:
		if refusal == "" {
			refusal = tooMany(maxTokens)
		}
		return BadRequest(refusal)
	case longKey:
		return BadRequest(fmt.Sprintf("the body has a key longer than %d bytes", MaxJSONKey))
	}
	return nil
}

// scanJSON counts the tokens of body, a JSON text, as encoding/json's
// Decoder.Token would return them less the closing brackets, stopping at
// maxTokens+1; and reports whether it met a key longer than maxKey bytes
// first. It checks no syntax.
func scanJSON(body []byte, maxTokens, maxKey int) (tokens int, longKey bool) {
	for i := 0; i < len(body); i++ {
		switch body[i] {
		case ' ', '\t', '\n', '\r', ',', ':', ']', '}':
			continue
		case '[', '{':
		case '"':
			start := i
			for i++; i < len(body) && body[i] != '"'; i++ {
				if body[i] == '\\' {
					i++ // the escaped byte, a quote perhaps
				}
			}
			if i-start-1 > maxKey && isKey(body[min(i+1, len(body)):]) {
				return tokens, true
			}
		default: // a number, true, false or null: up to the next delimiter
			for i+1 < len(body) && !delimiter(body[i+1]) {
				i++
			}
		}
		if tokens++; tokens > maxTokens {
			return tokens, false
		}
	}
	return tokens, false
}

// isKey reports whether rest, what follows a string, makes it a key.
func isKey(rest []byte) bool {
	for _, c := range rest {
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		}
		return c == ':'
	}
	return false
}

func delimiter(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\r', ',', ':', '[', ']', '{', '}', '"':
		return true
	}
	return false
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
