// Package version holds the build's version, stamped at link time so a log
// line or a metric can say which build is running.
package version

// Version is set by the linker: ko.yaml and the Dockerfile pass
// -X github.com/taskfn/taskfn/shared/version.Version=<commit>. It is a var,
// not a const, because -X can only set package-level string variables.
// "dev" means an unstamped build (go run, go test, make build).
var Version = "dev"
