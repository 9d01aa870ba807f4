package httpx

import (
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestQuery(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		query  string
		want   url.Values
		detail string // of the 400, when the query is refused
	}{
		{"empty", "", url.Values{}, ""},
		{"pairs", "a=1&b=x%20y&a=2", url.Values{"a": {"1", "2"}, "b": {"x y"}}, ""},
		{"escaped semicolon", "q=a%3Bb", url.Values{"q": {"a;b"}}, ""},
		{"semicolon separator", "sort=title;drop%20table%20tasks", nil, "a literal ; is written %3B"},
		{"bad escape in a value", "q=100%", nil, `invalid URL escape "%"; a literal % is written %25`},
		{"bad escape in a key", "li%zzmit=1", nil, `invalid URL escape "%zz"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest("GET", "/x?"+tc.query, nil)
			got, err := Query(r)
			if tc.detail == "" {
				if err != nil {
					t.Fatal(err)
				}
				if d := cmp.Diff(tc.want, got); d != "" {
					t.Errorf("values (-want +got):\n%s", d)
				}
				return
			}
			p := AsProblem(err)
			if p == nil || p.Status != 400 || !strings.Contains(p.Detail, tc.detail) {
				t.Fatalf("err %v, want a 400 saying %q", err, tc.detail)
			}
		})
	}
}

func TestLimit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		query url.Values
		want  int // 0: refused with a 400
	}{
		{"absent", url.Values{}, 20},
		{"empty", url.Values{"limit": {""}}, 20},
		{"one", url.Values{"limit": {"1"}}, 1},
		{"the most", url.Values{"limit": {"100"}}, 100},
		{"zero", url.Values{"limit": {"0"}}, 0},
		{"over the most", url.Values{"limit": {"101"}}, 0},
		{"negative", url.Values{"limit": {"-5"}}, 0},
		{"not a number", url.Values{"limit": {"ten"}}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := Limit(tc.query, 20, 100)
			if tc.want == 0 {
				p := AsProblem(err)
				if p == nil || p.Status != 400 || p.Detail != `query parameter "limit" must be an integer from 1 to 100` {
					t.Fatalf("err %v, want the 400 naming 1 to 100", err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("got %d, %v; want %d", got, err, tc.want)
			}
		})
	}
}
