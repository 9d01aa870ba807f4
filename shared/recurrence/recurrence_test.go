package recurrence_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/taskfn/taskfn/shared/recurrence"
)

// local is wall time s ("2006-01-02T15:04[:05]") in zone tz.
func local(tz, s string) time.Time {
	loc, err := time.LoadLocation(tz)
	if err != nil {
		panic(err)
	}
	layout := "2006-01-02T15:04"
	if len(s) > len(layout) {
		layout += ":05"
	}
	t, err := time.ParseInLocation(layout, s, loc)
	if err != nil {
		panic(err)
	}
	return t
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestNext(t *testing.T) {
	t.Parallel()
	const (
		ber = "Europe/Berlin"
		ny  = "America/New_York"
		san = "America/Santiago"
	)
	tests := []struct {
		name, rule, tz string
		due            time.Time
		want           string // UTC RFC 3339; "" when the series has ended
		wantRule       string // "" means the rule unchanged
	}{
		// Europe/Berlin: 09:00 local is 08:00Z in CET, 07:00Z in CEST.
		{"berlin weekly into CEST", "FREQ=WEEKLY;BYDAY=MO", ber, local(ber, "2027-03-22T09:00"), "2027-03-29T07:00:00Z", ""},
		{"berlin weekly in CEST", "FREQ=WEEKLY;BYDAY=MO", ber, local(ber, "2027-03-29T09:00"), "2027-04-05T07:00:00Z", ""},
		{"berlin weekly into CET", "FREQ=WEEKLY;BYDAY=MO", ber, local(ber, "2027-10-25T09:00"), "2027-11-01T08:00:00Z", ""},
		// 02:30 on 2027-03-28 does not exist: the offset before the gap
		// (CET) makes it 03:30 CEST.
		{"berlin skipped 02:30", "FREQ=DAILY", ber, local(ber, "2027-03-27T02:30"), "2027-03-28T01:30:00Z", ""},
		// 02:30 on 2027-10-31 happens twice: the first (CEST, 00:30Z) it is;
		// time.Date alone gives the second (CET, 01:30Z).
		{"berlin repeated 02:30", "FREQ=WEEKLY;BYDAY=SU", ber, local(ber, "2027-10-24T02:30"), "2027-10-31T00:30:00Z", ""},

		// America/New_York: 09:00 local is 14:00Z in EST, 13:00Z in EDT.
		{"new york daily into EDT", "FREQ=DAILY", ny, local(ny, "2027-03-13T09:00"), "2027-03-14T13:00:00Z", ""},
		{"new york daily into EST", "FREQ=DAILY", ny, local(ny, "2027-11-06T09:00"), "2027-11-07T14:00:00Z", ""},
		// 02:30 on 2027-03-14 does not exist: 03:30 EDT per RFC 5545
		// (time.Date, and so rrule-go, give 01:30 EST).
		{"new york skipped 02:30", "FREQ=DAILY", ny, local(ny, "2027-03-13T02:30"), "2027-03-14T07:30:00Z", ""},
		// The next due is the next DTSTART, so 03:30 it stays...
		{"new york after skipped 02:30", "FREQ=DAILY", ny, utc("2027-03-14T07:30:00Z"), "2027-03-15T07:30:00Z", ""},
		// ...unless the rule pins the time of day.
		{"new york pinned 02:30", "FREQ=DAILY;BYHOUR=2;BYMINUTE=30", ny, utc("2027-03-14T07:30:00Z"), "2027-03-15T06:30:00Z", ""},
		{"new york pinned 02:30 before gap", "FREQ=DAILY;BYHOUR=2;BYMINUTE=30", ny, local(ny, "2027-03-13T02:30"), "2027-03-14T07:30:00Z", ""},
		// 01:30 on 2027-11-07 happens twice: the first, EDT.
		{"new york repeated 01:30", "FREQ=DAILY", ny, local(ny, "2027-11-06T01:30"), "2027-11-07T05:30:00Z", ""},
		{"new york after first 01:30", "FREQ=DAILY", ny, utc("2027-11-07T05:30:00Z"), "2027-11-08T06:30:00Z", ""},
		{"new york after second 01:30", "FREQ=DAILY", ny, utc("2027-11-07T06:30:00Z"), "2027-11-08T06:30:00Z", ""},
		// HOURLY steps the wall clock: 02:00 is skipped into 03:00 EDT, and
		// the repeated 01:00 EST is left out.
		{"hourly spring forward", "FREQ=HOURLY", ny, local(ny, "2027-03-14T01:00"), "2027-03-14T07:00:00Z", ""},
		{"hourly after spring forward", "FREQ=HOURLY", ny, utc("2027-03-14T07:00:00Z"), "2027-03-14T08:00:00Z", ""},
		{"hourly fall back", "FREQ=HOURLY", ny, local(ny, "2027-11-07T01:00"), "2027-11-07T07:00:00Z", ""},
		// America/Santiago skips midnight on 2027-09-05; rrule-go on the
		// zone files the 5th under the 4th and so skips it.
		{"santiago noon", "FREQ=DAILY", san, local(san, "2027-09-04T12:00"), "2027-09-05T15:00:00Z", ""},
		{"santiago skipped midnight", "FREQ=DAILY", san, local(san, "2027-09-04T00:00"), "2027-09-05T04:00:00Z", ""},

		// Months and years.
		{"monthly on the 31st skips february", "FREQ=MONTHLY", "", utc("2027-01-31T09:00:00Z"), "2027-03-31T09:00:00Z", ""},
		{"last day of february", "FREQ=MONTHLY;BYMONTHDAY=-1", "", utc("2027-01-31T09:00:00Z"), "2027-02-28T09:00:00Z", ""},
		{"last day of february, leap year", "FREQ=MONTHLY;BYMONTHDAY=-1", "", utc("2028-01-31T09:00:00Z"), "2028-02-29T09:00:00Z", ""},
		{"yearly from february 29", "FREQ=YEARLY", "", utc("2028-02-29T09:00:00Z"), "2032-02-29T09:00:00Z", ""},
		{"february 29 skips 2100", "FREQ=YEARLY", "", utc("2096-02-29T09:00:00Z"), "2104-02-29T09:00:00Z", ""},
		{"last workday of january", "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1", "", utc("2027-01-05T09:00:00Z"), "2027-01-29T09:00:00Z", ""},
		{"last workday of february", "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1", "", utc("2027-01-29T09:00:00Z"), "2027-02-26T09:00:00Z", ""},
		{"last workday of march", "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1", "", utc("2027-02-26T09:00:00Z"), "2027-03-31T09:00:00Z", ""},
		{"fifth-last monday", "FREQ=MONTHLY;BYDAY=-5MO", "", utc("2027-01-05T09:00:00Z"), "2027-03-01T09:00:00Z", ""},
		{"february 29 on a monday", "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO", "", utc("2027-01-01T09:00:00Z"), "2044-02-29T09:00:00Z", ""},

		// Interval, count, until.
		{"every other week", "FREQ=WEEKLY;INTERVAL=2", "", utc("2027-03-22T09:00:00Z"), "2027-04-05T09:00:00Z", ""},
		{"count 3", "FREQ=WEEKLY;COUNT=3;BYDAY=MO", "", utc("2027-03-22T09:00:00Z"), "2027-03-29T09:00:00Z", "FREQ=WEEKLY;COUNT=2;BYDAY=MO"},
		{"count kept as written", "freq=daily;count=010", "", utc("2027-03-22T09:00:00Z"), "2027-03-23T09:00:00Z", "freq=daily;count=9"},
		{"count 2", "FREQ=DAILY;COUNT=2", "", utc("2027-03-22T09:00:00Z"), "2027-03-23T09:00:00Z", "FREQ=DAILY;COUNT=1"},
		{"count 1 ends", "FREQ=DAILY;COUNT=1", "", utc("2027-03-22T09:00:00Z"), "", ""},
		{"until before next", "FREQ=DAILY;UNTIL=20270323T085959Z", "", utc("2027-03-22T09:00:00Z"), "", ""},
		{"until at next", "FREQ=DAILY;UNTIL=20270323T090000Z", "", utc("2027-03-22T09:00:00Z"), "2027-03-23T09:00:00Z", ""},
		{"until already past", "FREQ=DAILY;UNTIL=20270101T000000Z", "", utc("2027-03-22T09:00:00Z"), "", ""},
		// 08:30 Berlin is 07:30Z, before the next at 08:00Z (read as UTC
		// it would be after it).
		{"local until read in zone", "FREQ=DAILY;UNTIL=20270323T083000", ber, local(ber, "2027-03-22T09:00"), "", ""},
		{"local until at next", "FREQ=DAILY;until=20270323t090000", ber, local(ber, "2027-03-22T09:00"), "2027-03-23T08:00:00Z", ""},
		// A date includes its day (rrule-go stops at its midnight).
		{"until date includes its day", "FREQ=DAILY;UNTIL=20270323", ber, local(ber, "2027-03-22T09:00"), "2027-03-23T08:00:00Z", ""},
		{"until date before next", "FREQ=DAILY;UNTIL=20270322", ber, local(ber, "2027-03-22T09:00"), "", ""},

		// A due the rule does not match: the next match, not due's copy.
		{"tuesday due, mondays", "FREQ=WEEKLY;BYDAY=MO", "", utc("2027-03-23T09:00:00Z"), "2027-03-29T09:00:00Z", ""},
		{"tuesday due, mondays, count", "FREQ=WEEKLY;BYDAY=MO;COUNT=2", "", utc("2027-03-23T09:00:00Z"), "2027-03-29T09:00:00Z", "FREQ=WEEKLY;BYDAY=MO;COUNT=1"},
		{"afternoon due, 09:00 daily", "FREQ=DAILY;BYHOUR=9;BYMINUTE=0;BYSECOND=0", "", utc("2027-03-23T15:00:00Z"), "2027-03-24T09:00:00Z", ""},
		{"morning due, 09:00 daily", "FREQ=DAILY;BYHOUR=9;BYMINUTE=0;BYSECOND=0", "", utc("2027-03-23T08:00:00Z"), "2027-03-23T09:00:00Z", ""},
		// rrule-go works to the second; the next is strictly after due.
		{"fractional due", "FREQ=DAILY", "", utc("2027-03-23T09:00:00Z").Add(500 * time.Millisecond), "2027-03-24T09:00:00Z", ""},

		// Ends and bounds.
		{"never again", "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", "", utc("2027-01-01T09:00:00Z"), "", ""},
		{"never again daily", "FREQ=DAILY;BYMONTH=4;BYMONTHDAY=31", "", utc("2027-01-01T09:00:00Z"), "", ""},
		{"never again hourly", "FREQ=HOURLY;BYMONTH=2;BYMONTHDAY=30", "", utc("2027-01-01T09:00:00Z"), "", ""},
		// rrule-go would loop forever: from 09:00 every 2 hours never hits 10.
		{"unreachable hour", "FREQ=HOURLY;INTERVAL=2;BYHOUR=10", "", utc("2027-01-01T09:00:00Z"), "", ""},
		{"reachable hour", "FREQ=HOURLY;INTERVAL=2;BYHOUR=11", "", utc("2027-01-01T09:00:00Z"), "2027-01-01T11:00:00Z", ""},
		{"1000 years ahead", "FREQ=YEARLY;INTERVAL=1000", "", utc("2027-03-01T09:00:00Z"), "3027-03-01T09:00:00Z", ""},
		{"far-future due", "FREQ=WEEKLY;BYDAY=FR", "", utc("9500-01-01T09:00:00Z"), "9500-01-05T09:00:00Z", ""},
		{"ancient due", "FREQ=MONTHLY;BYDAY=1MO", "", utc("1900-01-01T09:00:00Z"), "1900-02-05T09:00:00Z", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			next, nextRule, ok, err := recurrence.Next(tt.rule, tt.tz, tt.due)
			if err != nil {
				t.Fatalf("Next(%q, %q, %v): %v", tt.rule, tt.tz, tt.due, err)
			}
			if tt.want == "" {
				if ok || !next.IsZero() || nextRule != "" {
					t.Fatalf("Next(%q, %q, %v) = %v, %q, %v; want the series ended", tt.rule, tt.tz, tt.due, next, nextRule, ok)
				}
				return
			}
			wantRule := tt.wantRule
			if wantRule == "" {
				wantRule = tt.rule
			}
			if !ok || !next.Equal(utc(tt.want)) || next.Location() != time.UTC || nextRule != wantRule {
				t.Fatalf("Next(%q, %q, %v) = %v, %q, %v; want %s, %q, true", tt.rule, tt.tz, tt.due, next, nextRule, ok, tt.want, wantRule)
			}
		})
	}
}

// TestNextSeries follows a Berlin 09:00 Monday series through a year: it
// stays 09:00 local, 08:00Z in winter and 07:00Z in summer.
func TestNextSeries(t *testing.T) {
	t.Parallel()
	rule := "FREQ=WEEKLY;BYDAY=MO;COUNT=60"
	due := local("Europe/Berlin", "2027-01-04T09:00")
	ber, _ := time.LoadLocation("Europe/Berlin")
	var hours []int
	for i := 59; i > 0; i-- {
		next, nextRule, ok, err := recurrence.Next(rule, "Europe/Berlin", due)
		if err != nil || !ok {
			t.Fatalf("Next(%q, %v) = %v, %v", rule, due, ok, err)
		}
		if l := next.In(ber); l.Weekday() != time.Monday || l.Hour() != 9 || l.Minute() != 0 || next.Sub(due) < 6*24*time.Hour {
			t.Fatalf("Next(%q, %v) = %v (%v)", rule, due, next, l)
		}
		if want := "FREQ=WEEKLY;BYDAY=MO;COUNT=" + strconv.Itoa(i); nextRule != want {
			t.Fatalf("next rule %q, want %q", nextRule, want)
		}
		if len(hours) == 0 || hours[len(hours)-1] != next.Hour() {
			hours = append(hours, next.Hour())
		}
		rule, due = nextRule, next
	}
	if diff := cmp.Diff([]int{8, 7, 8}, hours); diff != "" {
		t.Errorf("UTC hours through the year (-want +got):\n%s", diff)
	}
	if _, _, ok, err := recurrence.Next(rule, "Europe/Berlin", due); ok || err != nil {
		t.Errorf("Next(%q) = %v, %v; want the series ended", rule, ok, err)
	}
}

func TestNextRefuses(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ rule, tz string }{
		{"FREQ=MINUTELY", ""},
		{"FREQ=DAILY", "Mars/Olympus"},
		{"", ""},
	} {
		if _, _, ok, err := recurrence.Next(c.rule, c.tz, time.Now()); err == nil || ok {
			t.Errorf("Next(%q, %q) = %v, %v; want an error", c.rule, c.tz, ok, err)
		}
	}
}

func list(from, to int) string {
	s := make([]string, 0, to-from+1)
	for i := from; i <= to; i++ {
		s = append(s, strconv.Itoa(i))
	}
	return strings.Join(s, ",")
}

func TestCheck(t *testing.T) {
	t.Parallel()
	const rec, tzf = "recurrence", "recurrence_tz"
	tests := []struct {
		rule, tz      string
		field, detail string // "" when valid; detail a substring
	}{
		{"FREQ=DAILY", "", "", ""},
		{"FREQ=DAILY", "UTC", "", ""},
		{"FREQ=WEEKLY;BYDAY=MO,WE;COUNT=10", "Europe/Berlin", "", ""},
		{"freq=weekly;byday=mo,we;wkst=su", "America/New_York", "", ""},
		{"FREQ=HOURLY;INTERVAL=8;BYHOUR=9,17", "", "", ""},
		{"FREQ=HOURLY;BYHOUR=9,10,11;BYMINUTE=0,30", "", "", ""},
		{"FREQ=DAILY;BYHOUR=" + list(0, 23), "", "", ""},
		{"FREQ=MONTHLY;BYMONTHDAY=-1", "", "", ""},
		{"FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1", "", "", ""},
		{"FREQ=MONTHLY;BYDAY=+5FR,-5MO", "", "", ""},
		{"FREQ=YEARLY;BYDAY=-53MO,+53SU", "", "", ""},
		{"FREQ=YEARLY;BYWEEKNO=1,-1;BYDAY=MO", "", "", ""},
		{"FREQ=YEARLY;BYYEARDAY=1,-1,366", "", "", ""},
		{"FREQ=YEARLY;BYMONTH=11;BYDAY=4TH", "", "", ""},
		{"FREQ=DAILY;BYHOUR=9;BYMINUTE=0,30;BYSETPOS=2", "", "", ""},
		{"FREQ=DAILY;UNTIL=20271231", "", "", ""},
		{"FREQ=DAILY;UNTIL=20271231T090000", "", "", ""},
		{"FREQ=DAILY;UNTIL=20271231T090000Z", "", "", ""},
		{"FREQ=DAILY;COUNT=1000;INTERVAL=1000", "", "", ""},

		{"", "", rec, "must not be empty"},
		{"FREQ=DAILY;BYMONTHDAY=" + strings.Repeat("1,", 250) + "1", "", rec, "at most 500 bytes"},
		{"FREQ=DAILY\nCOUNT=2", "", rec, "control characters"},
		{"FREQ=DAILY;\x00", "", rec, "control characters"},
		{"FREQ=DAILY\xff", "", rec, "UTF-8"},
		{"FREQ=DAILY; COUNT=2", "", rec, "spaces"},
		{"RRULE:FREQ=DAILY", "", rec, `without "RRULE:"`},
		{"rrule:FREQ=DAILY", "", rec, `without "RRULE:"`},
		{"FREQ=DAILY;", "", rec, "empty part"},
		{"FREQ=DAILY;;COUNT=2", "", rec, "empty part"},
		{"FREQ=DAILY;COUNT", "", rec, `part "COUNT": must be KEY=VALUE`},
		{"FREQ=DAILY;=2", "", rec, `part "=2": must be KEY=VALUE`},
		{"FREQ=DAILY;COUNT=", "", rec, `part "COUNT=": has no value`},
		{"FREQ=DAILY;BYDAY=MO;byday=TU", "", rec, `part "byday=TU": duplicate rule part byday`},
		{"BYDAY=MO", "", rec, "FREQ is required"},
		{"FREQ=MINUTELY", "", rec, `part "FREQ=MINUTELY": must be HOURLY or longer`},
		{"FREQ=secondly", "", rec, "must be HOURLY or longer"},
		{"FREQ=FORTNIGHTLY", "", rec, "must be one of HOURLY, DAILY, WEEKLY, MONTHLY, YEARLY"},
		{"FREQ=DAILY;DTSTART=20270101T090000Z", "", rec, `part "DTSTART=20270101T090000Z": not allowed`},
		{"FREQ=DAILY;TZID=Europe/Berlin", "", rec, `part "TZID=Europe/Berlin": not allowed`},
		{"FREQ=DAILY;COUNT=2;UNTIL=20271231", "", rec, "COUNT and UNTIL must not both be given"},
		{"FREQ=DAILY;COUNT=0", "", rec, "from 1 to 1000"},
		{"FREQ=DAILY;COUNT=1001", "", rec, "from 1 to 1000"},
		{"FREQ=DAILY;COUNT=-1", "", rec, "from 1 to 1000"},
		{"FREQ=DAILY;COUNT=+5", "", rec, "from 1 to 1000"},
		{"FREQ=DAILY;COUNT=99999999999999999999", "", rec, "from 1 to 1000"},
		{"FREQ=DAILY;INTERVAL=0", "", rec, `part "INTERVAL=0": must be a whole number from 1 to 1000`},
		{"FREQ=DAILY;INTERVAL=1001", "", rec, "from 1 to 1000"},
		{"FREQ=DAILY;UNTIL=2027", "", rec, `part "UNTIL=2027": must be a date`},
		{"FREQ=DAILY;UNTIL=20270230", "", rec, "must be a date"},
		{"FREQ=DAILY;UNTIL=20270101T250000", "", rec, "must be a date"},
		{"FREQ=DAILY;UNTIL=20270101T0900Z", "", rec, "must be a date"},
		{"FREQ=DAILY;UNTIL=20270101T090000.5Z", "", rec, "must be a date"},
		{"FREQ=DAILY;UNTIL=2027-01-01", "", rec, "must be a date"},
		{"FREQ=WEEKLY;BYDAY=XX", "", rec, `part "BYDAY=XX": invalid weekday "XX"`},
		{"FREQ=WEEKLY;BYDAY=MO,xx", "", rec, `part "BYDAY=MO,xx": invalid weekday "xx"`},
		{"FREQ=WEEKLY;BYDAY=MO,", "", rec, `invalid weekday ""`},
		{"FREQ=MONTHLY;BYDAY=0MO", "", rec, `invalid weekday "0MO"`},
		{"FREQ=MONTHLY;BYDAY=+XMO", "", rec, `invalid weekday "+XMO"`},
		{"FREQ=YEARLY;BYDAY=+54MO", "", rec, `weekday "+54MO": its number must be between 1 and 53 or -1 and -53`},
		{"FREQ=WEEKLY;BYDAY=1MO", "", rec, `weekday "1MO": a numbered weekday needs FREQ=MONTHLY or YEARLY`},
		{"FREQ=DAILY;BYDAY=-1FR", "", rec, "needs FREQ=MONTHLY or YEARLY"},
		{"FREQ=MONTHLY;BYDAY=6MO", "", rec, `weekday "6MO": its number must be between 1 and 5 or -1 and -5 within a month`},
		{"FREQ=MONTHLY;BYDAY=-6MO", "", rec, "between 1 and 5 or -1 and -5"},
		{"FREQ=YEARLY;BYMONTH=12;BYDAY=20MO", "", rec, "between 1 and 5 or -1 and -5"},
		{"FREQ=YEARLY;BYWEEKNO=1;BYDAY=1MO", "", rec, "not allowed with BYWEEKNO"},
		{"FREQ=MONTHLY;BYMONTHDAY=32", "", rec, `part "BYMONTHDAY=32": number "32" must be between 1 and 31 or -1 and -31`},
		{"FREQ=MONTHLY;BYMONTHDAY=1,0", "", rec, `number "0" must be between 1 and 31`},
		{"FREQ=MONTHLY;BYMONTHDAY=a", "", rec, `part "BYMONTHDAY=a": invalid number "a"`},
		{"FREQ=MONTHLY;BYMONTHDAY=1=2", "", rec, `invalid number "1=2"`},
		{"FREQ=YEARLY;BYMONTH=13", "", rec, `number "13" must be between 1 and 12`},
		{"FREQ=DAILY;BYHOUR=24", "", rec, `number "24" must be between 0 and 23`},
		{"FREQ=DAILY;BYMINUTE=60", "", rec, `number "60" must be between 0 and 59`},
		{"FREQ=DAILY;BYSECOND=-1", "", rec, `number "-1" must be between 0 and 59`},
		{"FREQ=YEARLY;BYYEARDAY=367", "", rec, `number "367" must be between 1 and 366`},
		{"FREQ=YEARLY;BYWEEKNO=54", "", rec, `number "54" must be between 1 and 53`},
		{"FREQ=MONTHLY;BYDAY=MO;BYSETPOS=0", "", rec, `number "0" must be between 1 and 366`},
		{"FREQ=WEEKLY;WKST=XX", "", rec, `part "WKST=XX": invalid weekday "XX"`},
		{"FREQ=WEEKLY;WKST=1MO", "", rec, `invalid weekday "1MO"`},
		{"FREQ=WEEKLY;WKST=MO,TU", "", rec, `invalid weekday "MO,TU"`},
		{"FREQ=DAILY;BYWEEKNO=1", "", rec, `part "BYWEEKNO=1": only allowed with FREQ=YEARLY`},
		{"FREQ=MONTHLY;BYYEARDAY=1", "", rec, "not allowed with FREQ=MONTHLY"},
		{"FREQ=WEEKLY;BYMONTHDAY=1", "", rec, "not allowed with FREQ=WEEKLY"},
		{"FREQ=MONTHLY;BYSETPOS=1", "", rec, `part "BYSETPOS=1": needs another BYxxx part`},
		{"FREQ=HOURLY;BYMINUTE=0,30", "", rec, "give 48 times a day; at most 24"},
		{"FREQ=DAILY;BYMINUTE=" + list(0, 59), "", rec, "give 60 times a day"},
		{"FREQ=YEARLY;BYMINUTE=" + list(0, 59) + ";BYSECOND=" + list(0, 59), "", rec, "give 3600 times a day"},
		{"FREQ=HOURLY;BYSETPOS=2;BYMINUTE=0", "", rec, "each HOURLY period holds only 1"},
		{"FREQ=DAILY;BYHOUR=9,17;BYSETPOS=-3", "", rec, "each DAILY period holds only 2"},
		{"FREQ=DAILY;FOO=1", "", rec, `part "FOO=1": unknown rule part FOO`},
		{"FREQ=DAILY;foo=1", "", rec, `part "foo=1": unknown rule part foo`},
		{"FREQ=YEARLY;BYEASTER=0", "", rec, "unknown rule part BYEASTER"},

		{"FREQ=DAILY", "Mars/Olympus", tzf, `must be an IANA time zone name such as "Europe/Berlin"`},
		{"FREQ=DAILY", "Local", tzf, "IANA time zone"},
		{"FREQ=DAILY", "../../etc/passwd", tzf, "IANA time zone"},
		{"FREQ=DAILY", "Europe/Berlin\x00", tzf, "IANA time zone"},
	}
	for _, tt := range tests {
		t.Run(tt.rule+"@"+tt.tz, func(t *testing.T) {
			t.Parallel()
			got := recurrence.Check(tt.rule, tt.tz)
			if tt.field == "" {
				if got != nil {
					t.Fatalf("Check(%q, %q) = %+v, want nil", tt.rule, tt.tz, got)
				}
				return
			}
			if len(got) != 1 || got[0].Field != tt.field || !strings.Contains(got[0].Detail, tt.detail) {
				t.Fatalf("Check(%q, %q) = %+v, want one %s problem with %q", tt.rule, tt.tz, got, tt.field, tt.detail)
			}
		})
	}
}

func TestCheckReportsAll(t *testing.T) {
	t.Parallel()
	got := recurrence.Check("FREQ=MINUTELY;BYDAY=XX;FOO=1", "Mars/Olympus")
	want := []recurrence.Problem{
		{Field: "recurrence", Detail: `part "FREQ=MINUTELY": must be HOURLY or longer`},
		{Field: "recurrence", Detail: `part "BYDAY=XX": invalid weekday "XX"`},
		{Field: "recurrence", Detail: `part "FOO=1": unknown rule part FOO`},
		{Field: "recurrence_tz", Detail: `must be an IANA time zone name such as "Europe/Berlin"`},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Check (-want +got):\n%s", diff)
	}
}

func FuzzCheck(f *testing.F) {
	for _, s := range []string{
		"FREQ=DAILY", "FREQ=WEEKLY;BYDAY=MO,WE;COUNT=10", "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1",
		"FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29", "FREQ=HOURLY;INTERVAL=5;BYHOUR=1,2", "FREQ=MONTHLY;BYDAY=-5MO",
		"FREQ=YEARLY;BYWEEKNO=53;BYDAY=SU;WKST=SU", "FREQ=YEARLY;BYYEARDAY=-366;BYMONTH=1", "FREQ=DAILY;UNTIL=20270323T083000",
		"FREQ=YEARLY;BYDAY=-53MO;BYSETPOS=1,-1", "FREQ=WEEKLY;INTERVAL=3;UNTIL=20270101", "FREQ=MINUTELY", "RRULE:FREQ=DAILY",
		"FREQ=HOURLY;INTERVAL=2;BYHOUR=10", "FREQ=MONTHLY;BYDAY=+5MO,-5FR", "FREQ=DAILY;BYHOUR=2;BYMINUTE=30;COUNT=3",
	} {
		for _, tz := range []string{"", "Europe/Berlin", "America/New_York", "America/Santiago", "Pacific/Apia", "Australia/Lord_Howe"} {
			f.Add(s, tz, int64(1805000000))
		}
	}
	f.Fuzz(func(t *testing.T, rule, tz string, unix int64) {
		probs := recurrence.Check(rule, tz)
		due := time.Unix(unix%(1<<38), 0) // about ±8,700 years
		// A hang would only stall the fuzzer; fail instead.
		type result struct {
			next     time.Time
			nextRule string
			ok       bool
			err      error
		}
		done := make(chan result, 1)
		go func() {
			var r result
			r.next, r.nextRule, r.ok, r.err = recurrence.Next(rule, tz, due)
			done <- r
		}()
		var r result
		select {
		case r = <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("Next(%q, %q, %v) still running after 5s", rule, tz, due)
		}
		next, nextRule, ok, err := r.next, r.nextRule, r.ok, r.err
		if (probs == nil) != (err == nil) {
			t.Fatalf("Check(%q, %q) = %+v but Next: %v", rule, tz, probs, err)
		}
		if !ok {
			return
		}
		if !next.After(due) || next.Location() != time.UTC {
			t.Fatalf("Next(%q, %q, %v) = %v", rule, tz, due, next)
		}
		if p := recurrence.Check(nextRule, tz); p != nil {
			t.Fatalf("Next(%q) carries %q: %+v", rule, nextRule, p)
		}
	})
}
