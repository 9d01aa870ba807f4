package notify_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/taskfn/taskfn/shared/errs"
	"github.com/taskfn/taskfn/shared/events"
	"github.com/taskfn/taskfn/shared/notify"
)

// Decide is who hears of what; Summary is what they read.
func TestDecide(t *testing.T) {
	t.Parallel()
	snap := func(owner string, assignee *string) events.TaskSnapshot {
		return events.TaskSnapshot{ID: uuid.MustParse("0190a4c2-7b1e-7c3d-9e4f-123456789abc"), Project: "web", Title: "Ship it", OwnerID: owner, AssigneeID: assignee}
	}
	status := func(actor string, s events.TaskSnapshot) events.Data {
		return events.TaskStatusChangedData{Actor: actor, OldStatus: "todo", NewStatus: "in_progress", Task: s}
	}
	assign := func(actor string, old, cur *string, owner string) events.Data {
		return events.TaskAssignedData{Actor: actor, OldAssigneeID: old, NewAssigneeID: cur, Task: snap(owner, cur)}
	}
	comment := func(actor string, s events.TaskSnapshot, body string) events.Data {
		return events.CommentCreatedData{Actor: actor, Task: s, Comment: events.CommentSnapshot{ID: uuid.New(), TaskID: s.ID, Author: actor, Body: body}}
	}
	mention := func(actor string, s events.TaskSnapshot, body string, mentioned ...string) events.Data {
		return events.CommentCreatedData{Actor: actor, Task: s, Mentioned: mentioned,
			Comment: events.CommentSnapshot{ID: uuid.New(), TaskID: s.ID, Author: actor, Body: body}}
	}
	edit := func(actor string, s events.TaskSnapshot, body string, mentioned ...string) events.Data {
		return events.CommentUpdatedData{Actor: actor, Task: s, Mentioned: mentioned,
			Comment: events.CommentSnapshot{ID: uuid.New(), TaskID: s.ID, Author: actor, Body: body}}
	}
	due := time.Date(2027, 3, 29, 7, 0, 0, 0, time.UTC) // 09:00 in Berlin, summer time
	dated := func(owner string, assignee *string, tz string) events.TaskSnapshot {
		s := snap(owner, assignee)
		s.DueAt, s.RecurrenceTZ = &due, tz
		return s
	}
	type got struct{ Recipient, Summary string }
	tests := []struct {
		name string
		data events.Data
		want []got
	}{
		{"status: owner and assignee", status("carol", snap("alice", ptr("bob"))), []got{
			{"alice", "carol moved “Ship it” from todo to in progress"},
			{"bob", "carol moved “Ship it” from todo to in progress"},
		}},
		{"status: the assignee acted", status("bob", snap("alice", ptr("bob"))), []got{
			{"alice", "bob moved “Ship it” from todo to in progress"},
		}},
		{"status: self-assigned owner acted", status("alice", snap("alice", ptr("alice"))), nil},
		{"status: owner is assignee, someone else acted", status("carol", snap("alice", ptr("alice"))), []got{
			{"alice", "carol moved “Ship it” from todo to in progress"},
		}},
		{"assigned by the owner", assign("alice", nil, ptr("bob"), "alice"), []got{
			{"bob", "alice assigned “Ship it” to you"},
		}},
		{"reassigned by a manager", assign("mgr", ptr("bob"), ptr("dave"), "alice"), []got{
			{"alice", "mgr assigned “Ship it” to dave"},
			{"dave", "mgr assigned “Ship it” to you"},
			{"bob", "mgr reassigned “Ship it” from you to dave"},
		}},
		{"unassigned", assign("mgr", ptr("bob"), nil, "alice"), []got{
			{"alice", "mgr unassigned bob from “Ship it”"},
			{"bob", "mgr unassigned you from “Ship it”"},
		}},
		{"assignment that changes nothing", assign("mgr", ptr("bob"), ptr("bob"), "alice"), nil},
		{"report done", events.ReportCompletedData{ReportID: uuid.New(), Kind: "status_summary", RequestedBy: "carol", Status: "succeeded"}, []got{
			{"carol", "Your status summary report is ready"},
		}},
		{"report failed", events.ReportCompletedData{ReportID: uuid.New(), Kind: "tasks_export", RequestedBy: "carol", Status: "failed", Error: "x"}, []got{
			{"carol", "Your tasks export report failed"},
		}},
		{"webhook disabled", events.WebhookDisabledData{WebhookID: uuid.New(), Owner: "carol", URL: "https://example.com/hook", Failures: 50, LastError: "HTTP 503: down"}, []got{
			{"carol", "Your webhook to https://example.com/hook was disabled after 50 failed deliveries in a row: HTTP 503: down"},
		}},
		{"created with an assignee", events.TaskCreatedData{Actor: "alice", Task: snap("alice", ptr("bob"))}, []got{
			{"bob", "alice assigned “Ship it” to you"},
		}},
		{"created unassigned", events.TaskCreatedData{Actor: "alice", Task: snap("alice", nil)}, nil},
		{"updated: neither", events.TaskUpdatedData{Actor: "carol", Changed: []string{"title"}, Task: snap("alice", ptr("bob"))}, nil},
		{"deleted", events.TaskDeletedData{Actor: "alice", Task: snap("alice", ptr("bob"))}, nil},
		{"commented by a third", comment("carol", snap("alice", ptr("bob")), "Looks **good**"), []got{
			{"alice", "carol commented on “Ship it”: Looks **good**"},
			{"bob", "carol commented on “Ship it”: Looks **good**"},
		}},
		{"commented by the assignee", comment("bob", snap("alice", ptr("bob")), "done"), []got{
			{"alice", "bob commented on “Ship it”: done"},
		}},
		{"commented by the owner, unassigned", comment("alice", snap("alice", nil), "note to self"), nil},
		{"mentions: each named once, the owner as a mention only", mention("carol", snap("alice", ptr("bob")), "@dave @alice look", "dave", "alice"), []got{
			{"dave", "carol mentioned you on “Ship it”: @dave @alice look"},
			{"alice", "carol mentioned you on “Ship it”: @dave @alice look"},
			{"bob", "carol commented on “Ship it”: @dave @alice look"},
		}},
		{"a mention of oneself tells nobody", mention("carol", snap("carol", nil), "@carol", "carol"), nil},
		{"an edit tells only whom it newly mentions", edit("carol", snap("alice", ptr("bob")), "@erin too", "erin"), []got{
			{"erin", "carol mentioned you on “Ship it”: @erin too"},
		}},
		{"an edit without new mentions tells nobody", edit("carol", snap("alice", ptr("bob")), "typo fixed"), nil},
		{"reminder: owner and assignee, the time in the task's zone", events.TaskReminderData{Reminder: "-P1D", RemindAt: due.AddDate(0, 0, -1), Task: dated("alice", ptr("bob"), "Europe/Berlin")}, []got{
			{"alice", "Reminder: “Ship it” is due Mon 29 Mar 2027 09:00 CEST"},
			{"bob", "Reminder: “Ship it” is due Mon 29 Mar 2027 09:00 CEST"},
		}},
		{"reminder: owner is the assignee, told once", events.TaskReminderData{Reminder: "-PT1H", RemindAt: due.Add(-time.Hour), Task: dated("alice", ptr("alice"), "UTC")}, []got{
			{"alice", "Reminder: “Ship it” is due Mon 29 Mar 2027 07:00 UTC"},
		}},
		{"overdue", events.TaskOverdueData{DueAt: due, Task: dated("alice", nil, "America/New_York")}, []got{
			{"alice", "“Ship it” is overdue: it was due Mon 29 Mar 2027 03:00 EDT"},
		}},
		{"a long comment is quoted in part", comment("carol", snap("alice", nil), strings.Repeat("é", 300)), []got{
			{"alice", "carol commented on “Ship it”: " + strings.Repeat("é", 199) + "…"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			data, err := json.Marshal(tc.data)
			if err != nil {
				t.Fatal(err)
			}
			notices, err := notify.Decide(tc.data.EventType(), "application/json", data)
			if err != nil {
				t.Fatal(err)
			}
			var out []got
			for _, n := range notices {
				out = append(out, got{n.Recipient, n.Summary(func(s string) string { return s })})
				// A task's notice names its project, for clients to group by.
				if n.TaskID != nil && n.Detail["project"] != "web" {
					t.Errorf("notice detail %v, want project web", n.Detail)
				}
			}
			if d := cmp.Diff(tc.want, out); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

func TestDecidePoison(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, typ, contentType, data string
	}{
		{"xml", events.TaskStatusChanged, "application/xml", `<x/>`},
		{"truncated", events.TaskAssigned, "application/json", `{"task":`},
		{"wrong types", events.TaskStatusChanged, "application/json", `{"task":{"id":1}}`},
		{"no owner", events.TaskStatusChanged, "", `{"old_status":"todo","new_status":"done","task":{"id":"` + uuid.NewString() + `"}}`},
		{"too many mentioned", events.CommentUpdated, "application/json", `{"actor":"a","task":{"id":"0190a4c2-7b1e-7c3d-9e4f-123456789abc","owner_id":"o"},"comment":{"id":"` + uuid.NewString() + `","task_id":"0190a4c2-7b1e-7c3d-9e4f-123456789abc"},"mentioned":["1","2","3","4","5","6","7","8","9","10","11","12","13","14","15","16","17","18","19","20","21"]}`},
		{"reminder without due_at", events.TaskReminder, "application/json", `{"reminder":"-P1D","task":{"id":"` + uuid.NewString() + `","owner_id":"o"}}`},
		{"bad report status", events.ReportCompleted, "application/json", `{"report_id":"` + uuid.NewString() + `","requested_by":"a","status":"meh"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := notify.Decide(tc.typ, tc.contentType, []byte(tc.data)); !errors.Is(err, errs.ErrPoison) {
				t.Errorf("err %v, want ErrPoison", err)
			}
		})
	}
}
