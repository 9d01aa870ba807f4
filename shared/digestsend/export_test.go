package digestsend

import "time"

// SetNow sets the tick's clock.
func SetNow(h *Tick, now func() time.Time) { h.now = now }

// SetChartTimeout sets the timeout of each statement of the tick's chart.
func SetChartTimeout(h *Tick, d time.Duration) { h.chartTimeout = d }
