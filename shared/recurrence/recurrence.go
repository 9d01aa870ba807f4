// Package recurrence computes the next occurrence of a recurring task: an
// RFC 5545 RRULE (its parts only, no DTSTART) anchored on the task's due
// time in an IANA time zone. Check validates a rule and zone as the API
// takes them; Next gives the due of the next task in the series and the
// rule that task carries, COUNT counting the occurrences left, the current
// one included.
//
// Rules are expanded by github.com/teambition/rrule-go, but on floating
// wall-clock time (in UTC, where no clock jumps); each occurrence is then
// placed in the zone as RFC 5545 §3.3.5 says. Fed a real zone, rrule-go
// builds occurrences with time.Date, whose choice for a skipped or
// repeated wall time depends on the zone's side of UTC (02:30 on a
// spring-forward day is 01:30 EST in New York but 03:30 CEST in Berlin),
// and where midnight is skipped (America/Santiago) it files an occurrence
// under the day before. Check also refuses rules that would make rrule-go
// panic, loop forever or build millions of times (see Check).
package recurrence

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
	_ "time/tzdata" // the zones, for images without /usr/share/zoneinfo
	"unicode/utf8"

	"github.com/teambition/rrule-go"

	"github.com/taskfn/taskfn/shared/textfield"
)

// MaxRule bounds the rule text (bytes).
const MaxRule = 500

const (
	maxCount     = 1000
	maxInterval  = 1000
	maxPerDay    = 24   // times of day: a task more often than hourly is not a task
	horizonYears = 1000 // Next looks no further ahead
)

// Problem is a validation problem: Field is "recurrence" or
// "recurrence_tz", Detail a sentence fragment naming the bad part, e.g.
// `part "BYDAY=XX": invalid weekday "XX"` or `FREQ is required`.
type Problem struct{ Field, Detail string }

// Check validates rule and tz (tz "" means UTC) and returns problems (nil
// when valid). Rule parts are KEY=VALUE separated by ';', keys and values
// case-insensitive; FREQ is required and HOURLY or longer; DTSTART and TZID
// are refused (the series is anchored on due_at in tz); COUNT (occurrences
// left, 1 to 1000) and UNTIL (YYYYMMDD, YYYYMMDDTHHMMSS in tz, or
// YYYYMMDDTHHMMSSZ) exclude each other; INTERVAL is 1 to 1000; every other
// part is checked by rrule-go on its own so the problem names it. Beyond
// what rrule-go checks, it refuses what RFC 5545 forbids and rrule-go
// silently misreads (a numbered BYDAY outside MONTHLY/YEARLY, BYWEEKNO
// outside YEARLY, BYYEARDAY with DAILY to MONTHLY, BYMONTHDAY with WEEKLY,
// BYSETPOS alone), and what rrule-go would choke on: a numbered weekday
// past ±5 within a month (index out of range), a BYSETPOS past what an
// HOURLY or DAILY period holds (a scan of centuries), and more than 24
// times a day (hundreds of MiB per call, and not a task).
func Check(rule, tz string) []Problem {
	_, probs := parse(rule)
	if _, p := zone(tz); p != nil {
		probs = append(probs, *p)
	}
	return probs
}

// Next returns the occurrence after due for rule in tz (due is the
// DTSTART, in tz), the rule the next occurrence carries (COUNT
// decremented, otherwise the rule unchanged, byte for byte), and ok=false
// when the series has ended (COUNT=1, past UNTIL, or no further occurrence
// within 1000 years). It returns an error only for a rule/tz Check
// refuses. The returned time is in UTC, truncated to microseconds.
//
// Occurrences keep due's wall-clock time in tz across DST. A wall time
// that occurs twice is the first of the two; one skipped by a gap is read
// with the offset before the gap (02:30 on a spring-forward day in New
// York is 03:30 EDT), per RFC 5545 §3.3.5. Since the next due becomes the
// next DTSTART, such a shifted time stays shifted (03:30 from then on)
// unless the rule pins it with BYHOUR/BYMINUTE. HOURLY steps the wall
// clock too: the repeated hour of a fall-back night is left out.
func Next(rule, tz string, due time.Time) (next time.Time, nextRule string, ok bool, err error) {
	p, probs := parse(rule)
	loc, zp := zone(tz)
	if zp != nil {
		probs = append(probs, *zp)
	}
	if len(probs) > 0 {
		errs := make([]error, len(probs))
		for i, pr := range probs {
			errs[i] = fmt.Errorf("recurrence: %s: %s", pr.Field, pr.Detail)
		}
		return time.Time{}, "", false, errors.Join(errs...)
	}
	if p.countAt >= 0 && p.count == 1 {
		return time.Time{}, "", false, nil
	}
	next, ok, err = p.after(due, loc)
	if err != nil || !ok {
		return time.Time{}, "", false, err
	}
	if p.until != "" && next.After(untilTime(p.until, loc)) {
		return time.Time{}, "", false, nil
	}
	nextRule = rule
	if p.countAt >= 0 {
		parts := strings.Split(rule, ";")
		parts[p.countAt] = p.parts[p.countAt].given + "=" + strconv.Itoa(p.count-1)
		nextRule = strings.Join(parts, ";")
	}
	return next.UTC().Truncate(time.Microsecond), nextRule, true, nil
}

// part is one KEY=VALUE of a rule: key upper-cased, given and val as written.
type part struct{ raw, given, key, val string }

type parsed struct {
	parts   []part // in rule order, one per ';'-separated piece
	opt     rrule.ROption
	count   int
	countAt int    // index of COUNT in parts, -1 without
	until   string // UNTIL's value upper-cased, "" without
}

// zones caches loaded zones (only valid names, so it stays small):
// time.LoadLocation reads and parses the zone file on every call.
var zones sync.Map

func zone(tz string) (*time.Location, *Problem) {
	if tz == "" {
		return time.UTC, nil
	}
	if loc, ok := zones.Load(tz); ok {
		return loc.(*time.Location), nil
	}
	// "Local" is the server's zone, whatever that is.
	if loc, err := time.LoadLocation(tz); err == nil && tz != "Local" {
		zones.Store(tz, loc)
		return loc, nil
	}
	return nil, &Problem{"recurrence_tz", `must be an IANA time zone name such as "Europe/Berlin"`}
}

var freqs = map[string]rrule.Frequency{
	"HOURLY": rrule.HOURLY, "DAILY": rrule.DAILY, "WEEKLY": rrule.WEEKLY,
	"MONTHLY": rrule.MONTHLY, "YEARLY": rrule.YEARLY,
}

// byParts are checked by rrule-go, one at a time.
var byParts = map[string]bool{
	"BYDAY": true, "BYMONTHDAY": true, "BYMONTH": true, "BYSETPOS": true,
	"BYYEARDAY": true, "BYWEEKNO": true, "BYHOUR": true, "BYMINUTE": true,
	"BYSECOND": true, "WKST": true,
}

func parse(rule string) (*parsed, []Problem) {
	whole := func(detail string) []Problem { return []Problem{{"recurrence", detail}} }
	switch {
	case rule == "":
		return nil, whole("must not be empty")
	case len(rule) > MaxRule:
		return nil, whole(fmt.Sprintf("must be at most %d bytes", MaxRule))
	case !utf8.ValidString(rule):
		return nil, whole("must be valid UTF-8")
	case textfield.HasControl(rule, false):
		return nil, whole("must not contain control characters")
	case strings.Contains(rule, " "):
		return nil, whole("must not contain spaces")
	case len(rule) >= 6 && strings.EqualFold(rule[:6], "RRULE:"):
		return nil, whole(`must be the rule's parts only, without "RRULE:"`)
	}

	var probs []Problem
	bad := func(raw, format string, args ...any) {
		probs = append(probs, Problem{"recurrence", fmt.Sprintf("part %q: ", raw) + fmt.Sprintf(format, args...)})
	}
	p := &parsed{countAt: -1}
	has := map[string]bool{}
	for _, raw := range strings.Split(rule, ";") {
		k, v, _ := strings.Cut(raw, "=")
		key := strings.ToUpper(k)
		p.parts = append(p.parts, part{raw: raw, given: k, key: key, val: v})
		switch {
		case raw == "":
			probs = append(probs, Problem{"recurrence", "has an empty part (a stray ';')"})
		case k == "" || !strings.Contains(raw, "="):
			bad(raw, "must be KEY=VALUE")
		case v == "":
			bad(raw, "has no value")
		case has[key]:
			bad(raw, "duplicate rule part %s", k)
		}
		has[key] = true
	}
	if len(probs) > 0 {
		return nil, probs
	}

	freq := "" // valid FREQ, upper-cased
	if !has["FREQ"] {
		probs = append(probs, Problem{"recurrence", "FREQ is required"})
	}
	for _, pt := range p.parts {
		if pt.key != "FREQ" {
			continue
		}
		switch v := strings.ToUpper(pt.val); v {
		case "MINUTELY", "SECONDLY":
			bad(pt.raw, "must be HOURLY or longer")
		default:
			if _, ok := freqs[v]; !ok {
				bad(pt.raw, "must be one of HOURLY, DAILY, WEEKLY, MONTHLY, YEARLY")
			} else {
				freq = v
			}
		}
	}
	for i, pt := range p.parts {
		val := strings.ToUpper(pt.val)
		switch {
		case pt.key == "FREQ":
		case pt.key == "DTSTART":
			bad(pt.raw, "not allowed: the series starts at due_at")
		case pt.key == "TZID":
			bad(pt.raw, "not allowed: the time zone is recurrence_tz")
		case pt.key == "COUNT":
			n, ok := smallInt(val, maxCount)
			if !ok {
				bad(pt.raw, "must be a whole number from 1 to %d", maxCount)
			}
			p.count, p.countAt = n, i
		case pt.key == "INTERVAL":
			if _, ok := smallInt(val, maxInterval); !ok {
				bad(pt.raw, "must be a whole number from 1 to %d", maxInterval)
			}
		case pt.key == "UNTIL":
			if !validUntil(val) {
				bad(pt.raw, "must be a date YYYYMMDD or a date-time YYYYMMDDTHHMMSS (in recurrence_tz) or YYYYMMDDTHHMMSSZ (UTC)")
			}
			p.until = val
		case byParts[pt.key]:
			if d := checkBy(freq, pt.key, pt.val, has); d != "" {
				bad(pt.raw, "%s", d)
			}
		default:
			bad(pt.raw, "unknown rule part %s", pt.given)
		}
	}
	if has["COUNT"] && has["UNTIL"] {
		probs = append(probs, Problem{"recurrence", "COUNT and UNTIL must not both be given"})
	}
	if len(probs) > 0 {
		return nil, probs
	}

	if d := checkSets(freq, p.parts); d != "" {
		return nil, whole(d)
	}
	norm := make([]string, len(p.parts))
	for i, pt := range p.parts {
		norm[i] = pt.key + "=" + strings.ToUpper(pt.val)
	}
	opt, err := rrule.StrToROption(strings.Join(norm, ";"))
	if err == nil {
		_, err = rrule.NewRRule(*opt)
	}
	if err != nil {
		return nil, whole("is not a rule rrule-go accepts: " + err.Error())
	}
	p.opt = *opt
	return p, nil
}

// smallInt reads digits only (no sign) as 1..max.
func smallInt(s string, max int) (int, bool) {
	if s == "" || len(s) > 6 || strings.Trim(s, "0123456789") != "" {
		return 0, false
	}
	n, _ := strconv.Atoi(s)
	return n, n >= 1 && n <= max
}

// validUntil takes the three forms strictly: time.Parse alone would also
// take fractional seconds.
func validUntil(v string) bool {
	layout := map[int]string{8: rrule.DateFormat, 15: rrule.LocalDateTimeFormat, 16: rrule.DateTimeFormat}[len(v)]
	if layout == "" {
		return false
	}
	for i, c := range []byte(v) {
		want := c >= '0' && c <= '9'
		switch i {
		case 8:
			want = c == 'T'
		case 15:
			want = c == 'Z'
		}
		if !want {
			return false
		}
	}
	_, err := time.Parse(layout, v)
	return err == nil
}

// untilTime is the last instant UNTIL v allows: a local date-time is read
// in loc, and a date includes its whole day (rrule-go would stop at its
// midnight, leaving out that day's occurrences).
func untilTime(v string, loc *time.Location) time.Time {
	switch len(v) {
	case 8:
		d, _ := time.Parse(rrule.DateFormat, v)
		t, _ := place(d.AddDate(0, 0, 1), loc)
		return t.Add(-time.Nanosecond)
	case 15:
		d, _ := time.Parse(rrule.LocalDateTimeFormat, v)
		t, _ := place(d, loc)
		return t
	}
	t, _ := time.Parse(rrule.DateTimeFormat, v)
	return t
}

// checkBy checks one BYxxx or WKST part (val as given) and says what is
// wrong, "" when nothing. freq is "" when FREQ is missing or bad.
func checkBy(freq, key, val string, has map[string]bool) string {
	base := freq
	if base == "" {
		base = "YEARLY"
	}
	noun := "number"
	if key == "BYDAY" || key == "WKST" {
		noun = "weekday"
	}
	if libCheck(base, key, strings.ToUpper(val)) != nil {
		if key == "WKST" {
			return fmt.Sprintf("invalid weekday %q", val)
		}
		// Name the element rrule-go refuses.
		for _, e := range strings.Split(val, ",") {
			switch err := libCheck(base, key, strings.ToUpper(e)); {
			case errors.Is(err, errParse):
				return fmt.Sprintf("invalid %s %q", noun, e)
			case err != nil && key == "BYDAY":
				return fmt.Sprintf("weekday %q: its number %s", e, bounds(err))
			case err != nil:
				return fmt.Sprintf("%s %q %s", noun, e, bounds(err))
			}
		}
		return "invalid value"
	}
	switch key {
	case "WKST":
		if len(val) != 2 {
			return fmt.Sprintf("invalid weekday %q", val)
		}
	case "BYDAY":
		for _, e := range strings.Split(val, ",") {
			if len(e) == 2 {
				continue
			}
			n, _ := strconv.Atoi(e[:len(e)-2])
			inMonth := freq == "MONTHLY" || freq == "YEARLY" && has["BYMONTH"]
			switch {
			case n == 0: // RFC 5545: the number is 1 to 53
				return fmt.Sprintf("invalid weekday %q", e)
			case freq != "" && freq != "MONTHLY" && freq != "YEARLY":
				return fmt.Sprintf("weekday %q: a numbered weekday needs FREQ=MONTHLY or YEARLY", e)
			case freq == "YEARLY" && has["BYWEEKNO"]:
				return fmt.Sprintf("weekday %q: a numbered weekday is not allowed with BYWEEKNO", e)
			case inMonth && (n > 5 || n < -5):
				// No month has a sixth; rrule-go indexes out of range.
				return fmt.Sprintf("weekday %q: its number must be between 1 and 5 or -1 and -5 within a month", e)
			}
		}
	case "BYWEEKNO":
		if freq != "" && freq != "YEARLY" {
			return "only allowed with FREQ=YEARLY"
		}
	case "BYYEARDAY":
		if freq == "DAILY" || freq == "WEEKLY" || freq == "MONTHLY" {
			return "not allowed with FREQ=" + freq
		}
	case "BYMONTHDAY":
		if freq == "WEEKLY" {
			return "not allowed with FREQ=WEEKLY"
		}
	case "BYSETPOS":
		for k := range byParts {
			if has[k] && k != "BYSETPOS" && k != "WKST" {
				return ""
			}
		}
		return "needs another BYxxx part"
	}
	return ""
}

var errParse = errors.New("rrule-go cannot parse it")

// libCheck asks rrule-go about "FREQ=freq;key=val": errParse when it
// cannot parse it, else its range error, if any.
func libCheck(freq, key, val string) error {
	opt, err := rrule.StrToROption("FREQ=" + freq + ";" + key + "=" + val)
	if err != nil {
		return errParse
	}
	_, err = rrule.NewRRule(*opt)
	return err
}

// bounds turns rrule-go's "bymonthday must be between 1 and 31 or ..."
// into "must be between 1 and 31 or ...".
func bounds(err error) string {
	if _, after, ok := strings.Cut(err.Error(), " must "); ok {
		return "must " + after
	}
	return err.Error()
}

// checkSets bounds what one period holds: rrule-go builds every time of a
// period at once (YEARLY with 3,600 times a day is 150 MiB a call), and
// steps hour by hour through centuries when BYSETPOS can never pick one.
func checkSets(freq string, parts []part) string {
	n := map[string]int{"BYHOUR": 1, "BYMINUTE": 1, "BYSECOND": 1}
	var setpos []string
	hasHour := false
	for _, pt := range parts {
		switch pt.key {
		case "BYHOUR", "BYMINUTE", "BYSECOND":
			n[pt.key] = strings.Count(pt.val, ",") + 1
			hasHour = hasHour || pt.key == "BYHOUR"
		case "BYSETPOS":
			setpos = strings.Split(pt.val, ",")
		}
	}
	perPeriod := n["BYHOUR"] * n["BYMINUTE"] * n["BYSECOND"]
	perDay := perPeriod
	if freq == "HOURLY" {
		perPeriod = n["BYMINUTE"] * n["BYSECOND"]
		if !hasHour {
			perDay = 24 * perPeriod
		}
	}
	if perDay > maxPerDay {
		return fmt.Sprintf("BYHOUR, BYMINUTE and BYSECOND give %d times a day; at most %d (a task more often than hourly is not a task)", perDay, maxPerDay)
	}
	if freq == "HOURLY" || freq == "DAILY" {
		for _, s := range setpos {
			if v, _ := strconv.Atoi(s); v > perPeriod || v < -perPeriod {
				return fmt.Sprintf("BYSETPOS %s: each %s period holds only %d occurrence(s)", s, freq, perPeriod)
			}
		}
	}
	return ""
}

// after is the first occurrence of p strictly after due, in loc.
func (p *parsed) after(due time.Time, loc *time.Location) (next time.Time, ok bool, err error) {
	defer func() {
		// Check refuses what is known to make rrule-go panic; this is in
		// case something else does, so a bad rule cannot take a process down.
		if r := recover(); r != nil {
			next, ok, err = time.Time{}, false, fmt.Errorf("recurrence: rrule-go failed: %v", r)
		}
	}()
	f := floating(due.In(loc))
	// The Gregorian calendar repeats every 400 years (weekdays included),
	// so expand in a copy of f's cycle near rrule-go's year 9999 limit: a
	// rule that never matches again then costs some 1,000 years of steps,
	// not up to 8,000.
	shift := 400 * floorDiv(8999-f.Year(), 400)
	fs := f.AddDate(shift, 0, 0)

	opt := p.opt
	opt.Dtstart = fs
	opt.Count = 0 // Next counts
	opt.Until = fs.AddDate(horizonYears, 0, 2)
	interval := max(opt.Interval, 1)
	if opt.Freq == rrule.HOURLY && len(opt.Byhour) > 0 {
		// rrule-go loops forever when no BYHOUR is ever reached.
		g, reached := gcd(interval, 24), false
		for _, h := range opt.Byhour {
			reached = reached || (h-fs.Hour())%g == 0
		}
		if !reached {
			return time.Time{}, false, nil
		}
	}
	r, err := rrule.NewRRule(opt)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("recurrence: %w", err)
	}
	iter := r.Iterator()
	var best, end time.Time
	for {
		w, more := iter()
		if !more {
			break
		}
		w = w.AddDate(-shift, 0, 0)
		t, gap := place(w, loc)
		if best.IsZero() {
			if !t.After(due) { // due itself, or the first of a repeated time
				continue
			}
			best, end = t, w.Add(gap)
			if gap == 0 {
				break
			}
			continue
		}
		// best fell in a gap and was pushed later; a wall time just after
		// the gap may come earlier.
		if !w.Before(end) {
			break
		}
		if t.After(due) && t.Before(best) {
			best = t
		}
	}
	if best.IsZero() || best.After(due.AddDate(horizonYears, 0, 0)) {
		return time.Time{}, false, nil
	}
	return best, true, nil
}

// floating is t's wall clock, to the second, as a time in UTC.
func floating(t time.Time) time.Time {
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	return time.Date(y, mo, d, h, mi, s, 0, time.UTC)
}

// place is the instant of wall time w (floating) in loc by RFC 5545
// §3.3.5: a repeated wall time is the first of the two, a skipped one is
// read with the offset before the gap. gap is how far that moved it.
// time.Date does neither consistently: it picks by the zone's side of UTC.
func place(w time.Time, loc *time.Location) (t time.Time, gap time.Duration) {
	t = time.Date(w.Year(), w.Month(), w.Day(), w.Hour(), w.Minute(), w.Second(), 0, loc)
	at := func(offset int) time.Time { return time.Unix(w.Unix()-int64(offset), 0).In(loc) }
	tw := floating(t)
	if tw.Equal(w) {
		start, _ := t.ZoneBounds()
		if start.IsZero() {
			return t, 0
		}
		_, off := t.Zone()
		if _, prev := start.Add(-time.Second).Zone(); prev > off {
			if e := at(prev); e.Before(start) && floating(e).Equal(w) {
				return e, 0
			}
		}
		return t, 0
	}
	// w was skipped: time.Date went to one side of the gap.
	_, before := t.Zone()
	if tw.After(w) {
		start, _ := t.ZoneBounds()
		_, before = start.Add(-time.Second).Zone()
	}
	t = at(before)
	return t, floating(t).Sub(w)
}

func floorDiv(a, b int) int {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
