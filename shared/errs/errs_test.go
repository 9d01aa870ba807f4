package errs_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/taskfn/taskfn/shared/errs"
)

func TestKindOfWrapped(t *testing.T) {
	t.Parallel()
	base := errs.New(errs.NotFound, "thing not found", "")
	tests := []struct {
		name string
		err  error
		want errs.Kind
	}{
		{"sentinel", base, errs.NotFound},
		{"wrapped twice", fmt.Errorf("b: %w", fmt.Errorf("a: %w", base)), errs.NotFound},
		{"poison wrapped", fmt.Errorf("%w: bad data", errs.ErrPoison), errs.Poison},
		{"syntax", errs.Syntax("x"), errs.Invalid},
		{"plain error", errors.New("x"), 0},
		{"nil", nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := errs.KindOf(tt.err); got != tt.want {
				t.Errorf("KindOf = %d, want %d", got, tt.want)
			}
		})
	}
}

// Problem and After return copies: a sentinel shared by every request is
// never changed by one of them.
func TestProblemAndAfterCopy(t *testing.T) {
	t.Parallel()
	base := errs.New(errs.TooMany, "too many", "wait")
	named := base.Problem("too-many-x", "Too many x").After(time.Minute)
	if base.Slug != "" || base.RetryAfter != 0 {
		t.Errorf("the sentinel changed: %+v", base)
	}
	if named.Slug != "too-many-x" || named.RetryAfter != time.Minute || named.Kind != errs.TooMany || named.Error() != "too many" {
		t.Errorf("named = %+v", named)
	}
	if !errors.Is(fmt.Errorf("x: %w", named), named) || errors.Is(named, base) {
		t.Error("errors.Is must match the value returned, not the one it was copied from")
	}
}

func TestFieldsCap(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		add          int
		listed, more int
		full         bool
	}{
		{"none", 0, 0, 0, false},
		{"some", 3, 3, 0, false},
		{"exactly the cap", errs.MaxFieldErrors, errs.MaxFieldErrors, 0, true},
		{"over the cap", errs.MaxFieldErrors + 1000, errs.MaxFieldErrors, 1000, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var f errs.Fields
			for i := range tt.add {
				f.Add(fmt.Sprintf("f%d", i), "bad")
			}
			if f.Full() != tt.full || f.Len() != tt.add {
				t.Errorf("Full %t Len %d, want %t %d", f.Full(), f.Len(), tt.full, tt.add)
			}
			err := f.Err()
			if tt.add == 0 {
				if err != nil {
					t.Errorf("Err = %v, want nil", err)
				}
				return
			}
			var ve *errs.ValidationError
			if !errors.As(err, &ve) || len(ve.Fields) != tt.listed || ve.Omitted != tt.more {
				t.Fatalf("Err = %#v, want %d listed and %d omitted", err, tt.listed, tt.more)
			}
			if ve.Fields[0].Field != "f0" {
				t.Errorf("first kept %q, want f0", ve.Fields[0].Field)
			}
		})
	}
	if errs.Validation() != nil {
		t.Error("Validation() with no fields must be nil")
	}
}
