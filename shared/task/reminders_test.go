package task

import (
	"strings"
	"testing"
	"time"
)

func TestParseReminder(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, want, problem string
	}{
		{in: "-P1D", want: "-P1D"},
		{in: "-PT1H", want: "-PT1H"},
		{in: "-PT15M", want: "-PT15M"},
		{in: "-P2W", want: "-P2W"},
		{in: "-p1dt2h", want: "-P1DT2H"},
		{in: "-P1DT0H", want: "-P1D"},
		{in: "-PT0H30M", want: "-PT30M"},
		{in: "-P0DT90S", want: "-PT90S"},
		{in: "-P366D", want: "-P366D"},
		{in: "P1D", problem: "negative ISO 8601"},
		{in: "-P", problem: "negative ISO 8601"},
		{in: "-PT", problem: "negative ISO 8601"},
		{in: "-P1DT", problem: "negative ISO 8601"},
		{in: "-P1M", problem: "negative ISO 8601"}, // months: no fixed length
		{in: "-P1Y", problem: "negative ISO 8601"},
		{in: "-P1W2D", problem: "negative ISO 8601"},
		{in: "-P0D", problem: "must not be zero"},
		{in: "-PT0S", problem: "must not be zero"},
		{in: "-P367D", problem: "at most a year"},
		{in: "-P53W", problem: "at most a year"},
		{in: "-1 day", problem: "negative ISO 8601"},
		{in: "", problem: "negative ISO 8601"},
		{in: "-P1.5D", problem: "negative ISO 8601"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			got, problem := ParseReminder(tc.in)
			if tc.problem != "" {
				if !strings.Contains(problem, tc.problem) {
					t.Fatalf("ParseReminder(%q) = %q, %q; want a problem with %q", tc.in, got, problem, tc.problem)
				}
				return
			}
			if problem != "" || got != tc.want {
				t.Fatalf("ParseReminder(%q) = %q, %q; want %q", tc.in, got, problem, tc.want)
			}
		})
	}
}

func TestValidateRecurrenceAndReminders(t *testing.T) {
	t.Parallel()
	due := time.Date(2027, 3, 29, 7, 0, 0, 0, time.UTC)
	rule := func(s string) *string { return &s }
	base := Task{Title: "t", Status: StatusTodo, Priority: PriorityMedium, RecurrenceTZ: DefaultRecurrenceTZ, DueAt: &due}
	for _, tc := range []struct {
		name   string
		edit   func(*Task)
		fields []string // the fields with errors, in order
	}{
		{"weekly", func(t *Task) { t.Recurrence = rule("FREQ=WEEKLY;BYDAY=MO") }, nil},
		{"weekly in Berlin", func(t *Task) { t.Recurrence, t.RecurrenceTZ = rule("FREQ=WEEKLY"), "Europe/Berlin" }, nil},
		{"a zone alone", func(t *Task) { t.RecurrenceTZ = "Europe/Berlin" }, nil},
		{"recurrence without due_at", func(t *Task) { t.Recurrence, t.DueAt = rule("FREQ=DAILY"), nil }, []string{"due_at"}},
		{"bad rule", func(t *Task) { t.Recurrence = rule("FREQ=WEEKLY;BYDAY=XX") }, []string{"recurrence"}},
		{"bad zone", func(t *Task) { t.Recurrence, t.RecurrenceTZ = rule("FREQ=DAILY"), "Mars/Olympus" }, []string{"recurrence_tz"}},
		{"bad zone alone", func(t *Task) { t.RecurrenceTZ = "Mars/Olympus" }, []string{"recurrence_tz"}},
		{"reminders", func(t *Task) { t.Reminders = []string{"-P1D", "-PT1H"} }, nil},
		{"reminders without due_at", func(t *Task) { t.Reminders, t.DueAt = []string{"-P1D"}, nil }, []string{"reminders"}},
		{"six reminders", func(t *Task) { t.Reminders = []string{"-PT1M", "-PT2M", "-PT3M", "-PT4M", "-PT5M", "-PT6M"} }, []string{"reminders"}},
		{"bad and duplicate reminders", func(t *Task) { t.Reminders = []string{"-P1D", "soon", "-P1D"} }, []string{"reminders[1]", "reminders[2]"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			task := base
			tc.edit(&task)
			var got []string
			for _, fe := range Validate(task) {
				got = append(got, fe.Field)
			}
			if strings.Join(got, ",") != strings.Join(tc.fields, ",") {
				t.Fatalf("fields with errors %v, want %v (%v)", got, tc.fields, Validate(task))
			}
		})
	}
}
