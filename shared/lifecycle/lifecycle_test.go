package lifecycle

import (
	"os"
	"runtime/debug"
	"testing"
)

// Not parallel: the GC settings are the process's.
func TestTuneRuntime(t *testing.T) {
	tests := []struct {
		name     string
		gogc     string // "" unset
		wantGOGC int
	}{
		{"GOGC unset: the default for pods", "", DefaultGOGC},
		{"GOGC set: left to the runtime, which read it at start", "150", 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := debug.SetGCPercent(100)
			defer debug.SetGCPercent(before)
			if tt.gogc == "" {
				if v, ok := os.LookupEnv("GOGC"); ok {
					os.Unsetenv("GOGC")
					defer os.Setenv("GOGC", v)
				}
			} else {
				t.Setenv("GOGC", tt.gogc)
			}
			t.Setenv("AUTOMEMLIMIT", "off") // the memory limit is the library's to test
			if err := TuneRuntime(); err != nil {
				t.Fatal(err)
			}
			if got := debug.SetGCPercent(100); got != tt.wantGOGC {
				t.Errorf("GC percent %d, want %d", got, tt.wantGOGC)
			}
		})
	}
}

func TestTuneRuntimeRespectsGOMEMLIMIT(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	defer debug.SetMemoryLimit(before)
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	t.Setenv("GOMEMLIMIT", "123MiB")
	debug.SetMemoryLimit(123 << 20)
	if err := TuneRuntime(); err != nil {
		t.Fatal(err)
	}
	if got := debug.SetMemoryLimit(-1); got != 123<<20 {
		t.Errorf("memory limit %d, want the one GOMEMLIMIT set", got)
	}
}
