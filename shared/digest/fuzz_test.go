package digest_test

import (
	"context"
	"testing"
	"time"

	"github.com/taskfn/taskfn/shared/digest"
	"github.com/taskfn/taskfn/shared/httpx"
)

// FuzzParsePreferences: any body is accepted as preferences the table
// takes (digest weekly or off, a zone that loads), or refused as a 400 or
// a 422, never anything else.
func FuzzParsePreferences(f *testing.F) {
	for _, s := range []string{`{"digest":"weekly","time_zone":"Europe/Berlin"}`, `{"digest":"off"}`, `{"digest":"weekly","time_zone":"../etc"}`,
		`{"digest":"weekly","time_zone":"Local"}`, `{"digest":1}`, `{}`, `[]`, `null`, `{"digest":"weekly","time_zone":"UTC"} x`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := digest.ParsePreferences(body)
		if err != nil {
			if s := httpx.ProblemOf(context.Background(), err).Status; s != 400 && s != 422 {
				t.Fatalf("%q: a %d", body, s)
			}
			return
		}
		if p.Digest != digest.Weekly && p.Digest != digest.Off {
			t.Fatalf("%q: digest %q accepted", body, p.Digest)
		}
		if _, err := time.LoadLocation(p.TimeZone); err != nil || p.TimeZone == "" || p.TimeZone == "Local" {
			t.Fatalf("%q: zone %q accepted", body, p.TimeZone)
		}
	})
}
