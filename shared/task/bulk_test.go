package task_test

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/taskfn/taskfn/shared/task"
)

// TestUpdateManyRaces: bulk changes over the same tasks, given in opposite
// orders, queue on the rows (locked in id order) instead of deadlocking,
// and every one of them applies to every task.
func TestUpdateManyRaces(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := t.Context()
	var ids []uuid.UUID
	for i := range 20 {
		tk, err := s.Create(ctx, "alice", draft("alice", fmt.Sprint("race ", i)))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, tk.ID)
	}
	reversed := slices.Clone(ids)
	slices.Reverse(reversed)
	const rounds = 25
	var wg sync.WaitGroup
	for w, order := range [][]uuid.UUID{ids, reversed} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				_, err := s.UpdateMany(ctx, "alice", order, func(cur task.Task) (task.Task, error) {
					cur.Description = fmt.Sprintf("writer %d round %d", w, i)
					return cur, nil
				})
				if err != nil {
					t.Errorf("writer %d round %d: %v", w, i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, id := range ids {
		cur, err := s.GetPrimary(ctx, id)
		if err != nil || cur.Version != 1+2*rounds {
			t.Fatalf("%s at version %d (%v), want %d: a bulk change was lost", id, cur.Version, err, 1+2*rounds)
		}
	}
	// A missing task refuses them all.
	_, err := s.UpdateMany(ctx, "alice", append(slices.Clone(ids[:2]), uuid.New()), func(cur task.Task) (task.Task, error) {
		cur.Title = "never"
		return cur, nil
	})
	var be *task.BulkError
	if !errors.As(err, &be) || len(be.Failures) != 1 || be.Failures[0].Index != 2 {
		t.Fatalf("with a missing task: %v", err)
	}
	if cur, _ := s.GetPrimary(ctx, ids[0]); cur.Title == "never" {
		t.Fatal("a refused bulk change wrote")
	}
}
