package digest

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/taskfn/taskfn/shared/errs"
)

// The values of "digest".
const (
	Weekly = "weekly"
	Off    = "off"
)

// maxZone bounds a zone name; the longest IANA name is 32 bytes.
const maxZone = 64

// Preferences are a subject's notification preferences, as GET and PUT
// /me/preferences show them.
type Preferences struct {
	Digest   string `json:"digest"`
	TimeZone string `json:"time_zone"`
}

// Defaults are the preferences of a subject who never set any.
var Defaults = Preferences{Digest: Off, TimeZone: "UTC"}

// Location is p's zone, loaded; UTC when it cannot be (never for stored
// preferences: they were checked when put).
func (p Preferences) Location() *time.Location {
	loc, err := time.LoadLocation(p.TimeZone)
	if err != nil {
		return time.UTC
	}
	return loc
}

// ParsePreferences decodes and checks a PUT body: malformed JSON or an
// unknown member is a 400, an invalid value a 422 naming its field. A
// missing time_zone is UTC; digest is required.
func ParsePreferences(body []byte) (Preferences, error) {
	var raw struct {
		Digest   *string `json:"digest"`
		TimeZone *string `json:"time_zone"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil || dec.More() {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return Preferences{}, errs.Validation(errs.FieldError{Field: te.Field, Detail: "must be a string"})
		}
		return Preferences{}, errs.Syntax(`the body must be one JSON object {"digest": "weekly"|"off", "time_zone": "Europe/Berlin"}`)
	}
	var bad errs.Fields
	p := Defaults
	switch {
	case raw.Digest == nil:
		bad.Add("digest", `is required: "weekly" or "off"`)
	case *raw.Digest != Weekly && *raw.Digest != Off:
		bad.Add("digest", `must be "weekly" or "off"`)
	default:
		p.Digest = *raw.Digest
	}
	if raw.TimeZone != nil {
		p.TimeZone = *raw.TimeZone
		if !validZone(p.TimeZone) {
			bad.Add("time_zone", "must be an IANA time zone name, such as Europe/Berlin or UTC")
		}
	}
	return p, bad.Err()
}

// validZone accepts IANA names the machine knows. time.LoadLocation also
// takes "" and "Local" (the server's zone) and reads a name as a path
// below the zoneinfo directory: those are refused first.
func validZone(name string) bool {
	if name == "" || name == "Local" || len(name) > maxZone || strings.Contains(name, "..") ||
		strings.HasPrefix(name, "/") || strings.ContainsAny(name, "\\\x00") {
		return false
	}
	_, err := time.LoadLocation(name)
	return err == nil
}
