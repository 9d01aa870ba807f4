package report

import "github.com/taskfn/taskfn/shared/errs"

// errNotReady is content asked for before the report succeeded.
var errNotReady = errs.New(errs.Conflict, "report content is not ready",
	"the report has not succeeded; its status says why, or when to look again").
	Problem("report-not-ready", "Report not ready")
