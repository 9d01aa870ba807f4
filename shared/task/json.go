package task

import (
	"bytes"
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// AppendJSON appends t's JSON representation to b: the bytes encoding/json
// makes of it (its field tags), except that nil labels are [] as the API
// shows them. It exists for speed: the list route encodes 50 to 200 tasks
// per request, and encoding/json's reflection plus its re-validation of
// every time.Time's MarshalJSON output were about 40% of the route's CPU.
// TestAppendJSONMatchesEncodingJSON and FuzzAppendJSON hold the two
// encodings equal, so a field added to Task must be added here too.
func (t *Task) AppendJSON(b []byte) []byte {
	b = append(b, `{"id":"`...)
	b = appendUUID(b, t.ID)
	b = append(b, `","project":`...)
	b = AppendJSONString(b, t.Project)
	b = append(b, `,"title":`...)
	b = AppendJSONString(b, t.Title)
	b = append(b, `,"description":`...)
	b = AppendJSONString(b, t.Description)
	b = append(b, `,"status":`...)
	b = AppendJSONString(b, string(t.Status))
	b = append(b, `,"priority":`...)
	b = AppendJSONString(b, string(t.Priority))
	b = append(b, `,"due_at":`...)
	if t.DueAt == nil {
		b = append(b, "null"...)
	} else {
		b = appendTime(b, *t.DueAt)
	}
	b = append(b, `,"owner_id":`...)
	b = AppendJSONString(b, t.OwnerID)
	b = append(b, `,"assignee_id":`...)
	if t.AssigneeID == nil {
		b = append(b, "null"...)
	} else {
		b = AppendJSONString(b, *t.AssigneeID)
	}
	b = append(b, `,"labels":[`...)
	for i, l := range t.Labels {
		if i > 0 {
			b = append(b, ',')
		}
		b = AppendJSONString(b, l)
	}
	b = append(b, `],"subtasks":{"total":`...)
	b = strconv.AppendInt(b, int64(t.Subtasks.Total), 10)
	b = append(b, `,"done":`...)
	b = strconv.AppendInt(b, int64(t.Subtasks.Done), 10)
	b = append(b, `},"archived":`...)
	b = strconv.AppendBool(b, t.Archived)
	b = append(b, `,"archived_at":`...)
	if t.ArchivedAt == nil {
		b = append(b, "null"...)
	} else {
		b = appendTime(b, *t.ArchivedAt)
	}
	b = append(b, `,"recurrence":`...)
	if t.Recurrence == nil {
		b = append(b, "null"...)
	} else {
		b = AppendJSONString(b, *t.Recurrence)
	}
	b = append(b, `,"recurrence_tz":`...)
	b = AppendJSONString(b, zoneArg(t.RecurrenceTZ))
	b = append(b, `,"reminders":[`...)
	for i, r := range t.Reminders {
		if i > 0 {
			b = append(b, ',')
		}
		b = AppendJSONString(b, r)
	}
	b = append(b, `],"series_id":`...)
	if t.SeriesID == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '"')
		b = appendUUID(b, *t.SeriesID)
		b = append(b, '"')
	}
	b = append(b, `,"fields":`...)
	b = AppendFields(b, t.Fields)
	b = append(b, `,"created_at":`...)
	b = appendTime(b, t.CreatedAt)
	b = append(b, `,"updated_at":`...)
	b = appendTime(b, t.UpdatedAt)
	b = append(b, `,"version":`...)
	b = strconv.AppendInt(b, t.Version, 10)
	return append(b, '}')
}

// AppendFields appends custom field values by name as encoding/json
// writes a map of json.RawMessage: keys sorted, each value compacted and
// HTML-escaped; {} for none.
func AppendFields(b []byte, fields map[string]json.RawMessage) []byte {
	if len(fields) == 0 {
		return append(b, "{}"...)
	}
	names := slices.Sorted(maps.Keys(fields))
	b = append(b, '{')
	for i, n := range names {
		if i > 0 {
			b = append(b, ',')
		}
		b = AppendJSONString(b, n)
		b = append(b, ':')
		var compact bytes.Buffer
		if err := json.Compact(&compact, fields[n]); err != nil {
			b = append(b, "null"...) // the store reads values as valid JSON
			continue
		}
		var escaped bytes.Buffer
		json.HTMLEscape(&escaped, compact.Bytes())
		b = append(b, escaped.Bytes()...)
	}
	return append(b, '}')
}

// AppendJSON appends the list body of p: {"items":[...],"next_cursor":...},
// next_cursor null on the last page: the list route's body, written next
// to Task.AppendJSON so a page's form lives with a task's.
func (p *Page) AppendJSON(b []byte) []byte {
	b = append(b, `{"items":[`...)
	for i := range p.Items {
		if i > 0 {
			b = append(b, ',')
		}
		b = p.Items[i].AppendJSON(b)
	}
	b = append(b, `],"next_cursor":`...)
	if p.Next == nil {
		return append(b, "null}"...)
	}
	b = AppendJSONString(b, p.Next.Encode())
	return append(b, '}')
}

// MarshalJSON makes encoding/json use AppendJSON too, so a task has one
// JSON form wherever it is encoded.
func (t Task) MarshalJSON() ([]byte, error) {
	return t.AppendJSON(make([]byte, 0, 384)), nil
}

// appendUUID appends id in its canonical 36-character form.
func appendUUID(b []byte, id [16]byte) []byte {
	const hex = "0123456789abcdef"
	for i, c := range id {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b = append(b, '-')
		}
		b = append(b, hex[c>>4], hex[c&0xf])
	}
	return b
}

// appendTime appends t as time.Time's MarshalJSON does: RFC 3339 with
// nanoseconds, quoted.
func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// AppendJSONString appends s as a JSON string exactly as encoding/json
// writes it by default: <, > and & escaped for HTML, invalid UTF-8 as
// U+FFFD, and U+2028 and U+2029 escaped for JavaScript.
func AppendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
