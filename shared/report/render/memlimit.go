package render

import (
	"runtime/debug"
	"sync"
)

// xlsxMemoryLimit is the Go runtime's soft memory limit while an xlsx
// export builds. excelize's StreamWriter keeps the sheet's last rows in a
// bytes.Buffer that grows to 32 MiB on its first spill to disk (its
// StreamChunkSize, 16 MiB, doubled) and is kept for the whole build, so
// about 36 MiB stay live; at GOGC 100 (400 in a pod, lifecycle.DefaultGOGC)
// the collector let the heap reach 65-68 MiB on top of that, 104 MiB of
// RSS for a million tasks. A limit just above what is live makes it
// collect as the heap nears the limit instead: measured in
// docs/reports.md. The runtime never fails on a soft limit, it only
// collects more often, so a build that needs more simply costs more CPU.
const xlsxMemoryLimit = 44 << 20

// memoryHold lowers the process's soft memory limit while at least one
// xlsx build runs and restores the one before when the last ends. The
// limit is process-wide: build-report builds one report at a time
// (containerConcurrency 1), the dev runner may build several, and a
// lower limit there only means more collections.
var memoryHold struct {
	sync.Mutex
	users int
	prev  int64
}

// holdMemoryLimit sets the soft memory limit to limit (unless it is lower
// already) until the returned release is called (once; more calls do
// nothing).
func holdMemoryLimit(limit int64) (release func()) {
	h := &memoryHold
	h.Lock()
	defer h.Unlock()
	if h.users == 0 {
		h.prev = debug.SetMemoryLimit(-1)
		if limit < h.prev {
			debug.SetMemoryLimit(limit)
		}
	}
	h.users++
	var once sync.Once
	return func() {
		once.Do(func() {
			h.Lock()
			defer h.Unlock()
			h.users--
			if h.users == 0 {
				debug.SetMemoryLimit(h.prev)
			}
		})
	}
}
