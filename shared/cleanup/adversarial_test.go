package cleanup_test

import (
	"testing"

	"github.com/taskfn/taskfn/shared/cache/cachetest"
	"github.com/taskfn/taskfn/shared/cleanup"
	"github.com/taskfn/taskfn/shared/events"
	"github.com/taskfn/taskfn/shared/events/eventstest"
	"github.com/taskfn/taskfn/shared/httpx/httpxtest"
	"github.com/taskfn/taskfn/shared/pgtest"
)

// TestAdversarialBodies holds the cleanup tick handler to a small answer
// and a bounded allocation for requests built to multiply either (issue
// #21). Not parallel: the allocations measured are the process's.
func TestAdversarialBodies(t *testing.T) {
	h, err := cleanup.NewHandler(newCleaner(t, pgtest.New(t), retention, cachetest.Config(t, "")))
	if err != nil {
		t.Fatal(err)
	}
	const size = 64 << 10 // the handler's limit
	httpxtest.CheckBounded(t, h, httpxtest.BoundsFor(size), eventstest.Adversarial(events.PingSourceType, size), nil)
}
