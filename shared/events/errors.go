package events

import (
	"errors"
	"fmt"

	"github.com/taskfn/taskfn/shared/errs"
)

// Publish errors, whatever the publisher; callers use errors.Is. They live
// here rather than beside the Kafka publisher so that the outbox and the
// stores can tell them apart without linking a Kafka client.
var (
	// ErrUnavailable: Kafka could not take the event now (unreachable,
	// no leader, timed out, or cooling down after such a failure). The
	// same event may well succeed later.
	ErrUnavailable = errs.New(errs.Unavailable, "events: kafka unavailable",
		"Kafka is unreachable; the events stay in the outbox")
	// ErrRejected: this event can never be published as it is (too large,
	// invalid); other events are not affected.
	ErrRejected = errors.New("events: event rejected")
	// ErrCoolingDown is the ErrUnavailable of a publish not even tried,
	// during the cooldown after a failure.
	ErrCoolingDown = fmt.Errorf("%w: cooling down after a failure", ErrUnavailable)
)
