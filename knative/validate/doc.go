// Package validate checks what taskfn ships to a cluster with the real
// tools, without a cluster: every manifest under knative/ and
// kafka-sources/ strictly decoded into the upstream Go API types and run
// through Knative's own defaulting and validation; the gateway's nginx
// config through `nginx -t`; alert rules and their unit tests through
// promtool; and an end-to-end test that runs the real function binaries
// behind the real nginx against PostgreSQL and a Keycloak-shaped issuer.
//
// It is a module of its own (knative.dev and k8s.io weigh ~130 modules), so
// the root module's `go test ./...` skips it: run `make validate`.
// cmd/kobase and cmd/imagecheck serve `make images`.
package validate
