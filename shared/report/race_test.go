//go:build race

package report_test

// raceEnabled: the race detector's shadow memory inflates RSS.
const raceEnabled = true
