package task

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/taskfn/taskfn/shared/errs"
)

// Past MaxLabels the labels are one error, and none is checked: a request
// of a thousand blank labels is told once what to change (issue #21).
func TestValidateTooManyLabels(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		labels []string
		want   []errs.FieldError
	}{
		{"at the limit, each checked", append(make([]string, MaxLabels-1), "a"), func() []errs.FieldError {
			var want []errs.FieldError
			for i := range MaxLabels - 1 {
				want = append(want, errs.FieldError{Field: fmt.Sprintf("labels[%d]", i), Detail: "must not be blank"})
			}
			return want
		}()},
		{"one past it, one error", make([]string, MaxLabels+1), []errs.FieldError{{Field: "labels", Detail: "must hold at most 20 labels"}}},
		{"a thousand past it, one error", make([]string, 1000), []errs.FieldError{{Field: "labels", Detail: "must hold at most 20 labels"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := Validate(Task{Title: "x", Status: StatusTodo, Priority: PriorityLow, Labels: tc.labels})
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}
