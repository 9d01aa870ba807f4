package cache_test

import (
	"testing"

	"github.com/google/uuid"

	"github.com/taskfn/taskfn/shared/cache"
	"github.com/taskfn/taskfn/shared/cache/cachetest"
)

// BenchmarkGet compares a cache hit (one EVALSHA round trip to the local
// Redis plus JSON decoding) with the database read it saves (store.Get,
// one query on the local PostgreSQL). Run with make bench.
func BenchmarkGet(b *testing.B) {
	cfg := cachetest.Config(b, "")
	w := newWorld(b, cfg, nil)
	ids := make([]uuid.UUID, 100)
	for i := range ids {
		tk := w.create("benchmark task with a title of typical length")
		ids[i] = tk.ID
	}
	// A realistic task: every optional field set.
	full := w.update(ids[0], "benchmark task with a title of typical length")
	raw, _ := w.entry(full.ID)
	b.Logf("entry of a task: %d bytes", len(raw))

	b.Run("cache hit", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if _, err := w.c.Get(bg, ids[i%len(ids)]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("store.Get", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if _, err := w.store.Get(bg, ids[i%len(ids)]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("cache hit parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				if _, err := w.c.Get(bg, ids[i%len(ids)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	})
	b.Run("store.Get parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				if _, err := w.store.Get(bg, ids[i%len(ids)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	})
	b.Run("decode entry", func(b *testing.B) {
		for b.Loop() {
			if _, _, err := cache.DecodeEntry(raw); err != nil {
				b.Fatal(err)
			}
		}
	})
}
