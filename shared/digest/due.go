package digest

import (
	"fmt"
	"time"
)

// SendHour is the local hour on Monday from which a week's digest is due.
const SendHour = 7

// Week names t's ISO week in loc, as digests are keyed: "2026-W49".
func Week(t time.Time, loc *time.Location) string {
	y, w := t.In(loc).ISOWeek()
	return fmt.Sprintf("%04d-W%02d", y, w)
}

// DueAt is Monday SendHour:00 in loc of the ISO week that holds t in loc.
// It is a wall-clock time: 07:00 in Europe/Berlin is 06:00Z in winter and
// 05:00Z in summer. (07:00 falls in no zone's daylight-saving gap or
// overlap today; time.Date would settle one if it did.)
func DueAt(t time.Time, loc *time.Location) time.Time {
	l := t.In(loc)
	sinceMonday := (int(l.Weekday()) + 6) % 7
	return time.Date(l.Year(), l.Month(), l.Day()-sinceMonday, SendHour, 0, 0, 0, loc)
}

// weekAfter is the due moment of the week after the one due is of.
func weekAfter(due time.Time, loc *time.Location) time.Time {
	l := due.In(loc)
	return time.Date(l.Year(), l.Month(), l.Day()+7, SendHour, 0, 0, 0, loc)
}

// FirstDue is when the next digest of a subject whose last one was for
// week last ("" for none) falls due, seen at now: this week's Monday
// 07:00 in loc (passed already when the week is under way, so the next
// tick sends it), or next week's if this week's went out.
func FirstDue(now time.Time, loc *time.Location, last string) time.Time {
	due := DueAt(now, loc)
	if Week(now, loc) == last {
		return weekAfter(due, loc)
	}
	return due
}

// Plan is the rule a tick applies to a subject it took, at now: send the
// digest of the current ISO week in loc when its Monday 07:00 has passed
// and that week is not last; either way, next is when to look again. A
// tick that comes late (the function was down a week) sends the current
// week only, never the weeks it missed.
func Plan(now time.Time, loc *time.Location, last string) (send bool, week string, next time.Time) {
	week, due := Week(now, loc), DueAt(now, loc)
	if now.Before(due) || week == last {
		return false, week, FirstDue(now, loc, last)
	}
	return true, week, weekAfter(due, loc)
}
