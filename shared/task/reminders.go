package task

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Limits of reminders.
const (
	MaxReminders = 5
	// maxReminderBefore bounds how far before due_at a reminder may be;
	// a year is more than any task manager offers and keeps the offsets'
	// arithmetic far from overflow.
	maxReminderBefore = 366 * 24 * time.Hour
)

// reminderForm is the ISO 8601 duration subset reminders take: weeks
// alone, or days and a time part. Years and months are left out: their
// length depends on the date, which would make "how far before" unclear.
var reminderForm = regexp.MustCompile(`^-P(?:(\d{1,4})W|(?:(\d{1,4})D)?(?:T(?:(\d{1,5})H)?(?:(\d{1,6})M)?(?:(\d{1,8})S)?)?)$`)

// ParseReminder checks one reminder and returns it normalized (zero parts
// dropped, so "-P1DT0H" is "-P1D"), or a problem naming what is wrong.
// PostgreSQL reads the normalized form as an interval (after the sign)
// to compute when it fires: migrations/00019_recurrence_reminders.sql.
func ParseReminder(s string) (string, string) {
	const form = "must be a negative ISO 8601 duration such as -P1D, -PT1H or -P1W: a time before due_at"
	m := reminderForm.FindStringSubmatch(strings.ToUpper(s))
	if m == nil || m[0] == "-P" || strings.HasSuffix(m[0], "T") {
		return "", form
	}
	n := make([]int64, 6)
	for i := 1; i < 6; i++ {
		if m[i] != "" {
			n[i], _ = strconv.ParseInt(m[i], 10, 64) // digits, bounded by the pattern
		}
	}
	weeks, days, hours, mins, secs := n[1], n[2], n[3], n[4], n[5]
	before := time.Duration(((weeks*7+days)*24+hours)*3600+mins*60+secs) * time.Second
	switch {
	case before == 0:
		return "", "must not be zero: a reminder at due_at is the overdue notification"
	case before > maxReminderBefore:
		return "", "must be at most a year before due_at"
	}
	if weeks > 0 {
		return fmt.Sprintf("-P%dW", weeks), ""
	}
	var b strings.Builder
	b.WriteString("-P")
	if days > 0 {
		fmt.Fprintf(&b, "%dD", days)
	}
	if hours+mins+secs > 0 {
		b.WriteByte('T')
		for _, p := range []struct {
			n    int64
			unit byte
		}{{hours, 'H'}, {mins, 'M'}, {secs, 'S'}} {
			if p.n > 0 {
				fmt.Fprintf(&b, "%d%c", p.n, p.unit)
			}
		}
	}
	return b.String(), ""
}
