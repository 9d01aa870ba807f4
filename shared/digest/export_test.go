package digest

import "time"

// SetNow sets the tick's clock.
func SetNow(h *Tick, now func() time.Time) { h.now = now }
