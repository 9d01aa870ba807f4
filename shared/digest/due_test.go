package digest_test

import (
	"testing"
	"time"

	"github.com/taskfn/taskfn/shared/digest"
)

func zone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// The due rule on real dates: Monday 07:00 on the wall clock of the zone,
// whatever its offset that day.
func TestDueAt(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, zone, now, due, week string
	}{
		{"Berlin winter: 06:00Z", "Europe/Berlin", "2026-12-09T12:00:00Z", "2026-12-07T06:00:00Z", "2026-W50"},
		{"Berlin summer: 05:00Z", "Europe/Berlin", "2026-07-01T12:00:00Z", "2026-06-29T05:00:00Z", "2026-W27"},
		{"Berlin, the week DST ends (Sunday 25 Oct 2026)", "Europe/Berlin", "2026-10-25T12:00:00Z", "2026-10-19T05:00:00Z", "2026-W43"},
		{"Berlin, the Monday after DST ended", "Europe/Berlin", "2026-10-26T06:30:00Z", "2026-10-26T06:00:00Z", "2026-W44"},
		{"Berlin, the Monday after DST began (29 Mar 2026)", "Europe/Berlin", "2026-03-30T05:00:00Z", "2026-03-30T05:00:00Z", "2026-W14"},
		{"Auckland summer (+13): Sunday 18:00Z", "Pacific/Auckland", "2026-12-07T00:00:00Z", "2026-12-06T18:00:00Z", "2026-W50"},
		{"Auckland winter (+12): Sunday 19:00Z", "Pacific/Auckland", "2026-07-06T00:00:00Z", "2026-07-05T19:00:00Z", "2026-W28"},
		{"Auckland: Sunday in UTC is Monday there", "Pacific/Auckland", "2026-12-06T12:00:00Z", "2026-12-06T18:00:00Z", "2026-W50"},
		{"UTC, Sunday night", "UTC", "2026-12-13T23:59:59Z", "2026-12-07T07:00:00Z", "2026-W50"},
		{"Kathmandu +05:45", "Asia/Kathmandu", "2026-12-07T02:00:00Z", "2026-12-07T01:15:00Z", "2026-W50"},
		{"ISO week 53 of 2026, New Year's Eve", "UTC", "2026-12-31T10:00:00Z", "2026-12-28T07:00:00Z", "2026-W53"},
		{"1 Jan 2027 is still in 2026-W53", "UTC", "2027-01-01T10:00:00Z", "2026-12-28T07:00:00Z", "2026-W53"},
		{"Los Angeles, Monday 07:00 PST is 15:00Z", "America/Los_Angeles", "2026-12-07T16:00:00Z", "2026-12-07T15:00:00Z", "2026-W50"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			loc := zone(t, tc.zone)
			now := utc(tc.now)
			if got := digest.DueAt(now, loc); !got.Equal(utc(tc.due)) {
				t.Errorf("DueAt(%s) = %s, want %s", tc.now, got.UTC().Format(time.RFC3339), tc.due)
			}
			if got := digest.Week(now, loc); got != tc.week {
				t.Errorf("Week(%s) = %s, want %s", tc.now, got, tc.week)
			}
		})
	}
}

// What a tick does with a subject it took, and when it looks again.
func TestPlan(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, zone, now, last string
		send                  bool
		week, next            string
	}{
		{"Berlin Monday 06:59 local: not yet", "Europe/Berlin", "2026-12-07T05:59:00Z", "2026-W49", false, "2026-W50", "2026-12-07T06:00:00Z"},
		{"Berlin Monday 07:00 local: due", "Europe/Berlin", "2026-12-07T06:00:00Z", "2026-W49", true, "2026-W50", "2026-12-14T06:00:00Z"},
		{"sent already this week", "Europe/Berlin", "2026-12-08T06:00:00Z", "2026-W50", false, "2026-W50", "2026-12-14T06:00:00Z"},
		{"never sent, Thursday: this week's now", "UTC", "2026-12-10T12:00:00Z", "", true, "2026-W50", "2026-12-14T07:00:00Z"},
		{"a week missed: only the current one", "UTC", "2026-12-15T12:00:00Z", "2026-W49", true, "2026-W51", "2026-12-21T07:00:00Z"},
		{"next across DST's end: 07:00 CET", "Europe/Berlin", "2026-10-19T05:00:00Z", "", true, "2026-W43", "2026-10-26T06:00:00Z"},
		{"next across DST's start: 07:00 CEST", "Europe/Berlin", "2026-03-23T06:00:00Z", "", true, "2026-W13", "2026-03-30T05:00:00Z"},
		{"Auckland Monday 07:00 NZDT", "Pacific/Auckland", "2026-12-06T18:00:00Z", "", true, "2026-W50", "2026-12-13T18:00:00Z"},
		{"Auckland across its DST start (27 Sep 2026)", "Pacific/Auckland", "2026-09-20T19:00:00Z", "", true, "2026-W39", "2026-09-27T18:00:00Z"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			send, week, next := digest.Plan(utc(tc.now), zone(t, tc.zone), tc.last)
			if send != tc.send || week != tc.week || !next.Equal(utc(tc.next)) {
				t.Errorf("Plan = %v %s %s, want %v %s %s", send, week, next.UTC().Format(time.RFC3339), tc.send, tc.week, tc.next)
			}
		})
	}
}

func TestParsePreferences(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, body string
		want       digest.Preferences
		status     int // 0: accepted
		field      string
	}{
		{"weekly in Berlin", `{"digest":"weekly","time_zone":"Europe/Berlin"}`, digest.Preferences{Digest: "weekly", TimeZone: "Europe/Berlin"}, 0, ""},
		{"off, zone defaults to UTC", `{"digest":"off"}`, digest.Preferences{Digest: "off", TimeZone: "UTC"}, 0, ""},
		{"unknown digest", `{"digest":"daily"}`, digest.Preferences{}, 422, "digest"},
		{"digest missing", `{"time_zone":"UTC"}`, digest.Preferences{}, 422, "digest"},
		{"unknown zone", `{"digest":"weekly","time_zone":"Mars/Olympus"}`, digest.Preferences{}, 422, "time_zone"},
		{"empty zone", `{"digest":"weekly","time_zone":""}`, digest.Preferences{}, 422, "time_zone"},
		{"Local is the server's, refused", `{"digest":"weekly","time_zone":"Local"}`, digest.Preferences{}, 422, "time_zone"},
		{"a path, refused", `{"digest":"weekly","time_zone":"../../../etc/passwd"}`, digest.Preferences{}, 422, "time_zone"},
		{"zone of the wrong type", `{"digest":"weekly","time_zone":1}`, digest.Preferences{}, 422, "time_zone"},
		{"unknown member", `{"digest":"weekly","colour":"red"}`, digest.Preferences{}, 400, ""},
		{"two objects", `{"digest":"weekly"}{}`, digest.Preferences{}, 400, ""},
		{"not JSON", `digest=weekly`, digest.Preferences{}, 400, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := digest.ParsePreferences([]byte(tc.body))
			checkProblem(t, err, tc.status, tc.field)
			if tc.status == 0 && got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}
