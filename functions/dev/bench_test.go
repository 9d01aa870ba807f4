package main

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// BenchmarkStatusChangeToInbox measures the whole event path as make dev
// runs it: a manager's PATCH commits the change and its outbox row, the
// writer publishes to the embedded broker (sarama over TCP), the
// KafkaSource stand-in consumes and POSTs the CloudEvent to notify, and
// the owner's inbox shows it. Reported: p50 and p99 from the PATCH's
// start to the inbox answering with the new notification (polled every
// millisecond), and changes per second through the path.
func BenchmarkStatusChangeToInbox(b *testing.B) {
	base := startDev(b, nil)
	carol := token(b, base, "carol", "carol", 200)
	bob := token(b, base, "bob", "bob", 200)
	created := call(b, base, "POST", "/tasks", carol, `{"title":"bench the inbox"}`, 201)
	id, _ := created["id"].(string)
	unread := func() float64 {
		page := call(b, base, "GET", "/notifications?unread=true&limit=1", carol, "", 200)
		n, _ := page["unread_count"].(float64)
		return n
	}
	var lat []time.Duration
	seen := unread()
	statuses := []string{"in_progress", "blocked"}
	start := time.Now()
	for i := 0; b.Loop(); i++ {
		t0 := time.Now()
		call(b, base, "PATCH", "/tasks/"+id, bob, fmt.Sprintf(`{"status":%q}`, statuses[i%2]), 200)
		for unread() <= seen {
			if time.Since(t0) > 10*time.Second {
				b.Fatal("the notification did not arrive in 10s")
			}
			time.Sleep(time.Millisecond)
		}
		lat = append(lat, time.Since(t0))
		seen++
	}
	elapsed := time.Since(start)
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "changes/s")
}
