package main

import (
	"strings"
	"testing"
	"time"

	"github.com/taskfn/taskfn/shared/notify/smtptest"
)

// TestDigestEndToEnd: the dev runner's send-digests stand-in ticks, the
// digest goes outbox → Kafka → notify, and carol finds it once in her
// inbox and once in her mailbox, the chart inline.
func TestDigestEndToEnd(t *testing.T) {
	mail := smtptest.Start(t)
	base := startDev(t, func(c *devConfig) {
		c.Notify.SMTP.Addr, c.Notify.SMTP.TLS = mail.Addr, "none"
		c.DigestInterval = 200 * time.Millisecond
	})
	carol := token(t, base, "carol", "carol", 200)
	call(t, base, "POST", "/tasks", carol, `{"title":"Water the plants"}`, 201)
	// A zone where this week's Monday 07:00 has passed, whenever this runs.
	zone := "UTC"
	if now := time.Now().UTC(); now.Weekday() == time.Monday && now.Hour() < 7 {
		zone = "Pacific/Kiritimati"
	}
	call(t, base, "PUT", "/me/preferences", carol, `{"digest":"weekly","time_zone":"`+zone+`"}`, 200)

	eventually(t, func() (map[string]any, bool) {
		page := call(t, base, "GET", "/notifications", carol, "", 200)
		items, _ := page["items"].([]any)
		return page, len(items) == 1 && items[0].(map[string]any)["kind"] == "digest.weekly"
	})
	eventually(t, func() (map[string]any, bool) { return nil, len(mail.Messages()) >= 1 })
	time.Sleep(time.Second) // five more ticks: a second digest would have come
	msgs := mail.Messages()
	if len(msgs) != 1 || !strings.HasPrefix(msgs[0].Header.Get("Content-Type"), "multipart/related") ||
		!strings.Contains(string(msgs[0].Raw), ": <chart@taskfn>") {
		t.Fatalf("%d emails; the first: %s", len(msgs), msgs[0].Header)
	}
	if page := call(t, base, "GET", "/notifications", carol, "", 200); len(page["items"].([]any)) != 1 {
		t.Errorf("inbox %v, want the one digest", page["items"])
	}
}
