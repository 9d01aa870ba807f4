package ratelimit

import (
	"testing"
	"time"
)

// Leases of callers gone quiet are dropped when a new caller comes, so
// the map holds about the callers of the last second or so.
func TestLeasesSwept(t *testing.T) {
	t.Parallel()
	ls := newLeases(10 * time.Millisecond) // idle after 1s
	start := time.Now()
	ls.get(leaseKey{Reads, "quiet"}, start)
	ls.get(leaseKey{Writes, "busy"}, start)
	ls.get(leaseKey{Writes, "busy"}, start.Add(1500*time.Millisecond))
	if n := ls.size(); n != 2 {
		t.Fatalf("%d leases before the sweep, want 2", n)
	}
	ls.get(leaseKey{Reads, "new"}, start.Add(2*time.Second))
	if n := ls.size(); n != 2 {
		t.Errorf("%d leases after the sweep, want the busy caller's and the new one's", n)
	}
	if _, ok := ls.m[leaseKey{Reads, "quiet"}]; ok {
		t.Error("the quiet caller's lease survived the sweep")
	}
}
