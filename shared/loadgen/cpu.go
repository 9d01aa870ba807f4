package loadgen

import (
	"bytes"
	"os"
	"strconv"
	"time"
)

// CPUGroup names a set of processes whose CPU time a run accounts for:
// the server under test, PostgreSQL's backends, Redis, the load generator.
type CPUGroup struct {
	Name  string
	Match func(pid int, comm string) bool
}

// CPUTime is CPU time (user + system) by group name. The group "other" is
// the rest of the machine: busy time from /proc/stat that no group took.
type CPUTime map[string]time.Duration

// OtherCPU is the name under which CPUTime keeps the rest of the machine.
const OtherCPU = "other"

// userHZ is the unit of /proc's CPU times; Linux fixes it at 100 for
// every architecture it exposes to user space.
const userHZ = 100

// ReadCPU reads the CPU time every group's processes have used so far,
// from /proc (Linux); a process belongs to the first group that matches
// it. Elsewhere it returns nil and runs report no CPU.
func ReadCPU(groups []CPUGroup) CPUTime {
	dir, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	out := CPUTime{}
	var grouped time.Duration
	for _, e := range dir {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, ticks, ok := procStat(pid)
		if !ok {
			continue // gone meanwhile
		}
		for _, g := range groups {
			if g.Match(pid, comm) {
				d := time.Duration(ticks) * time.Second / userHZ
				out[g.Name] += d
				grouped += d
				break
			}
		}
	}
	if busy, ok := machineBusy(); ok {
		out[OtherCPU] = busy - grouped
	}
	return out
}

// procStat returns a process's command name and utime+stime in ticks.
func procStat(pid int) (string, int64, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "", 0, false
	}
	// pid (comm) state ppid ...: comm may hold spaces and parentheses,
	// so it ends at the last ')'. utime and stime are fields 14 and 15.
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return "", 0, false
	}
	f := bytes.Fields(b[end+1:])
	if len(f) < 13 {
		return "", 0, false
	}
	utime, err1 := strconv.ParseInt(string(f[11]), 10, 64)
	stime, err2 := strconv.ParseInt(string(f[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return "", 0, false
	}
	return string(b[open+1 : end]), utime + stime, true
}

// machineBusy is the non-idle CPU time of the whole machine since boot.
func machineBusy() (time.Duration, bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, false
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := bytes.Fields(line)
	// cpu user nice system idle iowait irq softirq steal guest guest_nice;
	// guest time is already inside user.
	if len(f) < 9 || string(f[0]) != "cpu" {
		return 0, false
	}
	var busy int64
	for i, v := range f[1:9] {
		n, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil {
			return 0, false
		}
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return time.Duration(busy) * time.Second / userHZ, true
}

// Sub returns c - prev, group by group.
func (c CPUTime) Sub(prev CPUTime) CPUTime {
	if c == nil || prev == nil {
		return nil
	}
	out := CPUTime{}
	for k, v := range c {
		out[k] = v - prev[k]
	}
	return out
}

// Add adds o to c, group by group.
func (c CPUTime) Add(o CPUTime) CPUTime {
	if o == nil {
		return c
	}
	if c == nil {
		c = CPUTime{}
	}
	for k, v := range o {
		c[k] += v
	}
	return c
}
