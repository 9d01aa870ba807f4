package cache

import (
	"errors"
	"math"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// An entry is one string value: "<generation> <kind> <version> <payload>".
// The generation is the value of the generation key when the entry was
// written; an entry counts only while they are equal, so replacing the
// generation invalidates every entry at once. Kinds:
const (
	kindTask = 'U' // payload is the task's project, assignee and JSON (see encode)
	// kindTaskV1 is a task as revisions before projects wrote it, without
	// its project: it reads as a miss loaded from the primary (as a
	// poison does), and a value of its version may replace it. Revisions
	// before projects read a kindTask as malformed, and so from the
	// primary too, while both run during a rollout.
	kindTaskV1    = 'T'
	kindNegative  = 'N' // no such task, as a reader found; version 0
	kindTombstone = 'X' // purged; its version is above any live one
	// kindTrashed is a task in the trash at its version: it reads as not
	// found, and the restored task's higher version replaces it. Revisions
	// before the trash read it as malformed, and so from the primary.
	kindTrashed = 'D'
	// kindPoison is left by a writer that cannot prove its value is the
	// newest (see setScript): it reads as a miss to be loaded from the
	// primary, and only a value of at least its version may replace it.
	kindPoison = 'P'
)

// tombstoneVersion outranks every version a row can reach. Lua compares
// numbers as doubles, exact below 2^53, which versions never approach.
const tombstoneVersion = math.MaxInt64

// A hit is a plain MGET of the entry, the generation and the
// primary-window flag: one round trip, no script, and atomic, so the
// entry is checked against the generation of the same instant.

// observeScript returns {generation or "", primary window open (0/1),
// server time in ms}: what a miss (before loading) or a writer (before its
// transaction) must present when it later places a value. The time is the
// server's, so deadlines do not depend on the clocks of the pods.
//
// KEYS: generation, primary-window flag.
var observeScript = redis.NewScript(`
local t = redis.call('TIME')
return {redis.call('GET', KEYS[1]) or '', redis.call('EXISTS', KEYS[2]), tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)}
`)

// setScript places an entry. Every placement obeys the version rule: a
// valid entry of a higher version (or of the same version, unless it is a
// poison) is kept. A negative entry is version 0, a tombstone above all.
//
// A caller is "current" if the generation is still the one it saw before
// it touched the database (no invalidation since) and the server clock is
// not past its deadline (so no tombstone or newer entry it raced with can
// have expired since). A reader that is not current does not cache. A
// writer that is not current cannot tell whether a newer write's refresh
// was lost in the meantime, so it places a poison of its version instead
// of its value: readers then load from the primary, which has the newest
// value, while anything older it would have beaten stays out. A tombstone
// is placed as is: a delete is final.
//
// The script stamps the entry with the generation itself. A missing
// generation key means Redis lost its data (restart, eviction) or was
// never used: no entry is valid. A reader then starts a generation (New
// does so at start) and does not cache; a writer starts one and poisons.
// Generation values are random and never reused, so entries of a lost
// generation can never come back to life.
//
// Out of memory (noeviction), SET fails but DEL works: a writer then
// deletes the entry it could not replace, and reports -1 so its process
// invalidates the cache as soon as Redis takes writes again.
//
// KEYS: entry, generation, primary-window flag.
// ARGV: seen generation ("" if none), deadline ms, version, entry without
// its generation, ttl ms, writer (0/1), candidate generation.
// Returns 1 stored, 0 kept the current entry, 3 poisoned, -1 failed.
var setScript = redis.NewScript(`
local function failed(r)
  return type(r) == 'table' and r.err ~= nil
end
local writer = ARGV[6] == '1'
local entry, version, result = ARGV[4], tonumber(ARGV[3]), 1
local g = redis.call('GET', KEYS[2])
if not g then
  if not writer then
    redis.pcall('SET', KEYS[2], ARGV[7], 'NX')
    return 0
  end
  g = ARGV[7]
  if failed(redis.pcall('SET', KEYS[2], g)) then
    redis.call('DEL', KEYS[1])
    return -1
  end
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if g ~= ARGV[1] or now > tonumber(ARGV[2]) then
  if not writer then
    return 0
  end
  if string.sub(entry, 1, 1) ~= 'X' then
    entry, result = 'P ' .. ARGV[3] .. ' ', 3
  end
end
local cur = redis.call('GET', KEYS[1])
if cur then
  local cg, ck, cv = string.match(cur, '^(%S+) (%a) (%d+) ')
  cv = tonumber(cv)
  if cg == g and (cv > version or (cv == version and ck ~= 'P' and ck ~= 'T')) then
    return 0
  end
end
if failed(redis.pcall('SET', KEYS[1], g .. ' ' .. entry, 'PX', ARGV[5])) then
  if writer then
    redis.call('DEL', KEYS[1])
  end
  return -1
end
return result
`)

// invalidateScript starts a new generation and opens the primary window.
//
// KEYS: generation, primary-window flag. ARGV: new generation, window ms.
var invalidateScript = redis.NewScript(`
redis.call('SET', KEYS[1], ARGV[1])
if tonumber(ARGV[2]) > 0 then
  redis.call('SET', KEYS[2], '1', 'PX', ARGV[2])
end
return 1
`)

// setScript results.
const (
	setFailed   = -1
	setKept     = 0
	setStored   = 1
	setPoisoned = 3
)

// encode builds an entry but for the generation, which the set script
// puts in front. A task's payload is what authorization reads, then its
// JSON: "<len(project)> <project> <len(assignee)> <assignee> <json>", with
// "-" for the length and nothing after it when there is no assignee.
// Lengths, not separators, because subjects are arbitrary strings.
func encode(kind byte, version int64, e *Entry) string {
	size := 24
	if e != nil {
		size += 48 + len(e.Project) + len(e.JSON)
		if e.AssigneeID != nil {
			size += len(*e.AssigneeID)
		}
	}
	b := make([]byte, 0, size)
	b = append(b, kind, ' ')
	b = strconv.AppendInt(b, version, 10)
	b = append(b, ' ')
	if e != nil {
		b = strconv.AppendInt(b, int64(len(e.Project)), 10)
		b = append(b, ' ')
		b = append(b, e.Project...)
		b = append(b, ' ')
		if e.AssigneeID == nil {
			b = append(b, '-')
		} else {
			b = strconv.AppendInt(b, int64(len(*e.AssigneeID)), 10)
			b = append(b, ' ')
			b = append(b, *e.AssigneeID...)
		}
		b = append(b, ' ')
		b = append(b, e.JSON...)
	}
	return string(b)
}

var errCorrupt = errors.New("cache: malformed entry")

// decode reads an entry the read script vouched for. found is false for
// negative entries and tombstones.
func decode(v string) (e Entry, found bool, err error) {
	// Skip the generation, which the script has compared already.
	i := strings.IndexByte(v, ' ')
	if i < 0 || len(v) < i+4 || v[i+2] != ' ' {
		return e, false, errCorrupt
	}
	kind, rest := v[i+1], v[i+3:]
	switch kind {
	case kindNegative, kindTombstone, kindTrashed:
		return e, false, nil
	case kindTask:
	default:
		return e, false, errCorrupt
	}
	var ok bool
	var version, project string
	if version, rest, ok = strings.Cut(rest, " "); !ok {
		return e, false, errCorrupt
	}
	if e.Version, err = strconv.ParseInt(version, 10, 64); err != nil {
		return e, false, errCorrupt
	}
	if project, rest, ok = cutCounted(rest); !ok {
		return e, false, errCorrupt
	}
	e.Project = project
	if r, ok := strings.CutPrefix(rest, "- "); ok {
		rest = r
	} else {
		var assignee string
		if assignee, rest, ok = cutCounted(rest); !ok {
			return e, false, errCorrupt
		}
		e.AssigneeID = &assignee
	}
	if len(rest) == 0 || rest[0] != '{' {
		return e, false, errCorrupt
	}
	e.JSON = []byte(rest)
	return e, true, nil
}

// cutCounted reads "<n> <n bytes> " from the front of s.
func cutCounted(s string) (field, rest string, ok bool) {
	n, rest, ok := strings.Cut(s, " ")
	if !ok {
		return "", "", false
	}
	size, err := strconv.Atoi(n)
	if err != nil || size < 0 || size >= len(rest) || rest[size] != ' ' {
		return "", "", false
	}
	return rest[:size], rest[size+1:], true
}
