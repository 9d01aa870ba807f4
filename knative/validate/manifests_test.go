package validate

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	kafkaeventingv1alpha1 "knative.dev/eventing-kafka-broker/control-plane/pkg/apis/eventing/v1alpha1"
	kafkav1 "knative.dev/eventing-kafka-broker/control-plane/pkg/apis/sources/v1"
	kafkav1beta1 "knative.dev/eventing-kafka-broker/control-plane/pkg/apis/sources/v1beta1"
	sourcesv1 "knative.dev/eventing/pkg/apis/sources/v1"
	"knative.dev/pkg/apis"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite the copies embedded in manifests (gateway ConfigMap, PrometheusRule) from their source files")

// root is the repository, seen from this package's directory.
const root = "../.."

// applyDirs are what the README's `ko apply -f ... -f ...` reads. ko, like
// kubectl, takes only the .yaml and .json files directly in each (no -R), so
// knative/keycloak/realm-taskfn.json and the non-Kubernetes files under
// knative/observability/ are not applied.
var applyDirs = []string{"knative", "knative/gateway", "kafka-sources"}

// topicsDir holds Strimzi KafkaTopics, applied on their own in the Kafka
// cluster's namespace (`kubectl apply -n kafka -f kafka-sources/topics/`):
// the Topic Operator watches only that one. ko apply -f kafka-sources/ does
// not read it (no recursion).
const topicsDir = "kafka-sources/topics"

// monitoringDir holds Prometheus Operator objects, applied on their own
// (`kubectl apply -f knative/observability/`) where the operator's CRDs exist.
const monitoringDir = "knative/observability"

// modulePath prefixes every ko:// image.
const modulePath = "github.com/taskfn/taskfn"

// doc is one YAML document of a manifest file.
type doc struct {
	file string
	n    int // 1-based position in the file
	raw  []byte
	obj  any
	kind string // apiVersion/kind
}

func (d doc) String() string { return fmt.Sprintf("%s#%d (%s)", d.file, d.n, d.kind) }

// knativeObject is what Knative's and Knative Eventing's types implement.
type knativeObject interface {
	apis.Defaultable
	apis.Validatable
}

// newObject returns an empty typed object for apiVersion/kind, or nil for a
// kind nothing here knows: such a file fails rather than ships unchecked.
func newObject(kind string) any {
	switch kind {
	case "serving.knative.dev/v1/Service":
		return &servingv1.Service{}
	case "sources.knative.dev/v1/PingSource":
		return &sourcesv1.PingSource{}
	case "sources.knative.dev/v1/KafkaSource":
		return &kafkav1.KafkaSource{}
	case "sources.knative.dev/v1beta1/KafkaSource":
		return &kafkav1beta1.KafkaSource{}
	case "eventing.kafka.knative.dev/v1alpha1/KafkaSink":
		return &kafkaeventingv1alpha1.KafkaSink{}
	case "kafka.strimzi.io/v1beta2/KafkaTopic":
		// Third-party: Strimzi's Go types would pull in another large
		// module, so its small, stable schema is restated (strictly).
		return &kafkaTopic{}
	case "v1/ConfigMap":
		return &corev1.ConfigMap{}
	case "v1/Secret":
		return &corev1.Secret{}
	case "v1/ServiceAccount":
		return &corev1.ServiceAccount{}
	case "v1/Service":
		return &corev1.Service{}
	case "apps/v1/Deployment":
		return &appsv1.Deployment{}
	case "batch/v1/Job":
		return &batchv1.Job{}
	case "networking.k8s.io/v1/NetworkPolicy":
		return &networkingv1.NetworkPolicy{}
	case "policy/v1/PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}
	case "monitoring.coreos.com/v1/PodMonitor":
		return &monitoringv1.PodMonitor{}
	case "monitoring.coreos.com/v1/ServiceMonitor":
		return &monitoringv1.ServiceMonitor{}
	case "monitoring.coreos.com/v1/PrometheusRule":
		return &monitoringv1.PrometheusRule{}
	}
	return nil
}

// manifestFiles lists the .yaml and .json files directly in dir, as ko does.
func manifestFiles(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(root, dir))
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, e := range entries {
		if ext := filepath.Ext(e.Name()); !e.IsDir() && (ext == ".yaml" || ext == ".json") {
			files = append(files, filepath.Join(dir, e.Name()))
		}
	}
	return files
}

// decodeFile splits a file into documents and strictly decodes each: an
// unknown or duplicated field is an error, as a misspelt field would
// otherwise be dropped by the API server without a word.
func decodeFile(file string, data []byte) ([]doc, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var docs []doc
	var errs []error
	for n := 1; ; n++ {
		raw, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		var tm struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
		}
		if err := yaml.Unmarshal(raw, &tm); err != nil {
			errs = append(errs, fmt.Errorf("%s#%d: %w", file, n, err))
			continue
		}
		if tm.APIVersion == "" && tm.Kind == "" {
			var empty any
			if yaml.Unmarshal(raw, &empty) == nil && empty == nil {
				n-- // comments only
				continue
			}
		}
		d := doc{file: file, n: n, raw: raw, kind: tm.APIVersion + "/" + tm.Kind}
		d.obj = newObject(d.kind)
		if d.obj == nil {
			errs = append(errs, fmt.Errorf("%s: no Go type known for this kind: add it to newObject", d))
			continue
		}
		if err := yaml.UnmarshalStrict(raw, d.obj); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", d, err))
			continue
		}
		docs = append(docs, d)
	}
	return docs, errors.Join(errs...)
}

// koImage matches what `ko resolve` replaces with a built image.
var koImage = regexp.MustCompile(`ko://` + regexp.QuoteMeta(modulePath) + `/functions/([a-z0-9-]+)`)

// validateKnative runs an object through Knative's defaulting and
// validation as its webhook would on create. ko:// references are replaced
// first by a digest reference, as `ko resolve` does before the webhook
// sees them.
func validateKnative(d doc) error {
	resolved := koImage.ReplaceAll(d.raw, []byte("registry.invalid/taskfn/$1@sha256:"+strings.Repeat("0", 64)))
	obj := newObject(d.kind)
	if err := yaml.UnmarshalStrict(resolved, obj); err != nil {
		return err
	}
	ko, ok := obj.(knativeObject)
	if !ok {
		return nil
	}
	ctx := apis.WithinCreate(context.Background())
	ko.SetDefaults(ctx)
	if fe := ko.Validate(ctx).Filter(apis.ErrorLevel); fe != nil {
		return fe
	}
	return nil
}

// loadManifests decodes every manifest under dirs, failing t on any error.
func loadManifests(t testing.TB, dirs ...string) []doc {
	t.Helper()
	var all []doc
	for _, dir := range dirs {
		for _, f := range manifestFiles(t, dir) {
			data, err := os.ReadFile(filepath.Join(root, f))
			if err != nil {
				t.Fatal(err)
			}
			docs, err := decodeFile(f, data)
			if err != nil {
				t.Error(err)
			}
			all = append(all, docs...)
		}
	}
	return all
}

func TestManifestsDecodeAndValidate(t *testing.T) {
	docs := loadManifests(t, append(slices.Clone(applyDirs), monitoringDir, topicsDir)...)
	if len(docs) == 0 {
		t.Fatal("no manifests found")
	}
	for _, d := range docs {
		if err := validateKnative(d); err != nil {
			t.Errorf("%s: Knative validation: %v", d, err)
		}
		t.Logf("ok %s", d)
	}
}

// The decoder itself must catch what it is there for; the kinds not yet
// shipped (PingSource, KafkaSource) are exercised here too.
func TestDecoderCatchesMistakes(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		wantErr string // "" for valid
	}{
		{
			name: "unknown field in a Knative Service",
			yaml: `apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: x}
spec:
  template:
    spec:
      containers:
        - image: ko://github.com/taskfn/taskfn/functions/get-task
          readinesProbe: {httpGet: {path: /readyz}}
`,
			wantErr: "unknown field",
		},
		{
			name: "unknown field in a ConfigMap",
			yaml: `apiVersion: v1
kind: ConfigMap
metadata: {name: x}
date: {A: b}
`,
			wantErr: "unknown field",
		},
		{
			name:    "unknown kind",
			yaml:    "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: x}\n",
			wantErr: "no Go type known",
		},
		{
			name: "Knative rejects min-scale above max-scale",
			yaml: `apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: x}
spec:
  template:
    metadata:
      annotations:
        autoscaling.knative.dev/min-scale: "5"
        autoscaling.knative.dev/max-scale: "2"
    spec:
      containers:
        - image: ko://github.com/taskfn/taskfn/functions/get-task
`,
			wantErr: "min-scale",
		},
		{
			name: "Knative reserves PORT",
			yaml: `apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: x}
spec:
  template:
    spec:
      containers:
        - image: ko://github.com/taskfn/taskfn/functions/get-task
          env: [{name: PORT, value: "9000"}]
`,
			wantErr: "PORT",
		},
		{
			name: "PingSource",
			yaml: `apiVersion: sources.knative.dev/v1
kind: PingSource
metadata: {name: tick}
spec:
  schedule: "*/5 * * * *"
  contentType: application/json
  data: '{}'
  sink:
    ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: cleanup}
`,
		},
		{
			name: "PingSource with a bad schedule",
			yaml: `apiVersion: sources.knative.dev/v1
kind: PingSource
metadata: {name: tick}
spec:
  schedule: "every five minutes"
  sink:
    ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: cleanup}
`,
			wantErr: "schedule",
		},
		{
			name: "KafkaSource v1beta1",
			yaml: `apiVersion: sources.knative.dev/v1beta1
kind: KafkaSource
metadata: {name: notify}
spec:
  consumerGroup: taskfn-notify
  bootstrapServers: [kafka:9092]
  topics: [taskfn.tasks]
  sink:
    ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: notify}
`,
		},
		{
			name: "KafkaSource v1 without topics",
			yaml: `apiVersion: sources.knative.dev/v1
kind: KafkaSource
metadata: {name: notify}
spec:
  consumerGroup: taskfn-notify
  bootstrapServers: [kafka:9092]
  sink:
    ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: notify}
`,
			wantErr: "topics",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			docs, err := decodeFile("inline.yaml", []byte(tt.yaml))
			for _, d := range docs {
				err = errors.Join(err, validateKnative(d))
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("want valid, got %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("want an error containing %q, got %v", tt.wantErr, err)
			}
		})
	}
}

// podSpecs returns the pod templates of the workloads among docs, by name.
func podSpecs(docs []doc) map[string]*corev1.PodSpec {
	out := map[string]*corev1.PodSpec{}
	for _, d := range docs {
		switch o := d.obj.(type) {
		case *servingv1.Service:
			out[d.kind+" "+o.Name] = &o.Spec.Template.Spec.PodSpec
		case *batchv1.Job:
			out[d.kind+" "+o.Name] = &o.Spec.Template.Spec
		case *appsv1.Deployment:
			out[d.kind+" "+o.Name] = &o.Spec.Template.Spec
		}
	}
	return out
}

// Conventions the cluster does not enforce but the operator relies on.
func TestWorkloadConventions(t *testing.T) {
	docs := loadManifests(t, applyDirs...)
	for name, ps := range podSpecs(docs) {
		if ps.ServiceAccountName != "taskfn" {
			t.Errorf("%s: serviceAccountName %q, want taskfn", name, ps.ServiceAccountName)
		}
		for _, c := range ps.Containers {
			if _, ok := c.Resources.Limits[corev1.ResourceMemory]; !ok {
				t.Errorf("%s/%s: no memory limit", name, c.Name)
			}
			if _, ok := c.Resources.Requests[corev1.ResourceCPU]; !ok {
				t.Errorf("%s/%s: no cpu request", name, c.Name)
			}
			sc := c.SecurityContext
			if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
				sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
				t.Errorf("%s/%s: want allowPrivilegeEscalation false and readOnlyRootFilesystem true", name, c.Name)
			}
			nonRoot := (sc != nil && sc.RunAsNonRoot != nil && *sc.RunAsNonRoot) ||
				(ps.SecurityContext != nil && ps.SecurityContext.RunAsNonRoot != nil && *ps.SecurityContext.RunAsNonRoot)
			if !nonRoot {
				t.Errorf("%s/%s: runAsNonRoot not set", name, c.Name)
			}
		}
	}
	for _, d := range docs {
		labels := map[string]string{}
		if b, err := yaml.YAMLToJSON(d.raw); err == nil {
			var m struct {
				Metadata struct {
					Labels map[string]string `json:"labels"`
				} `json:"metadata"`
			}
			_ = yaml.Unmarshal(b, &m)
			labels = m.Metadata.Labels
		}
		if labels["app.kubernetes.io/part-of"] != "taskfn" {
			t.Errorf("%s: label app.kubernetes.io/part-of=taskfn missing", d)
		}
		if svc, ok := d.obj.(*servingv1.Service); ok {
			// Only the gateway faces clients; a function reachable from
			// outside would skip its 404/405/413 handling and body limit.
			if svc.Labels["networking.knative.dev/visibility"] != "cluster-local" {
				t.Errorf("%s: want label networking.knative.dev/visibility=cluster-local", d)
			}
		}
	}
}

// functionDirs lists the functions (functions/*/main.go), without the dev
// runner, which is never deployed.
func functionDirs(t testing.TB) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(root, "functions"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if !e.IsDir() || e.Name() == "dev" {
			continue
		}
		if _, err := os.Stat(filepath.Join(root, "functions", e.Name(), "main.go")); err == nil {
			names = append(names, e.Name())
		}
	}
	return names
}

// koRefs maps each ko:// function named in docs to the objects naming it.
func koRefs(docs []doc) map[string][]string {
	refs := map[string][]string{}
	for _, d := range docs {
		for _, m := range koImage.FindAllSubmatch(d.raw, -1) {
			refs[string(m[1])] = append(refs[string(m[1])], d.String())
		}
	}
	return refs
}

// Every function has a manifest, every ko:// image is a real function, and
// the dev runner is never deployed.
func TestImagesAreFunctions(t *testing.T) {
	docs := loadManifests(t, applyDirs...)
	refs := koRefs(docs)
	if _, ok := refs["dev"]; ok {
		t.Errorf("functions/dev is the local runner and must not be deployed: %v", refs["dev"])
	}
	for fn, where := range refs {
		if _, err := os.Stat(filepath.Join(root, "functions", fn, "main.go")); err != nil {
			t.Errorf("%v: ko://%s/functions/%s: no such function", where, modulePath, fn)
		}
	}
	for _, fn := range functionDirs(t) {
		if _, ok := refs[fn]; !ok {
			t.Errorf("functions/%s has no manifest naming ko://%s/functions/%s in %v", fn, modulePath, fn, applyDirs)
		}
	}
	// Any other image must be pinned by digest.
	for name, ps := range podSpecs(docs) {
		for _, c := range ps.Containers {
			if !strings.HasPrefix(c.Image, "ko://") && !strings.Contains(c.Image, "@sha256:") {
				t.Errorf("%s/%s: image %q is not pinned by digest", name, c.Name, c.Image)
			}
		}
	}
}

// A Knative Service is named after its function: the gateway sends a route
// to the Service called $fn, and dashboards group by that name.
func TestServicesNamedAfterFunctions(t *testing.T) {
	for _, d := range loadManifests(t, applyDirs...) {
		svc, ok := d.obj.(*servingv1.Service)
		if !ok {
			continue
		}
		m := koImage.FindStringSubmatch(svc.Spec.Template.Spec.Containers[0].Image)
		if m == nil || m[1] != svc.Name {
			t.Errorf("%s: Service %q runs %q; name it after its function", d, svc.Name, svc.Spec.Template.Spec.Containers[0].Image)
		}
	}
}

// The Secret in git is a template: real credentials never get committed.
func TestSecretsHoldPlaceholders(t *testing.T) {
	for _, d := range loadManifests(t, applyDirs...) {
		s, ok := d.obj.(*corev1.Secret)
		if !ok {
			continue
		}
		values := map[string]string{}
		for k, v := range s.StringData {
			values[k] = v
		}
		for k, v := range s.Data {
			values[k] = string(v)
		}
		for k, v := range values {
			if v != "" && !strings.Contains(v, "CHANGE-ME") {
				t.Errorf("%s: %s holds a value without CHANGE-ME: keep real secrets out of git", d, k)
			}
		}
	}
}

// configMapData returns the data of the ConfigMap named name in dir.
func configMapData(t testing.TB, dir, name string) map[string]string {
	t.Helper()
	for _, d := range loadManifests(t, dir) {
		if cm, ok := d.obj.(*corev1.ConfigMap); ok && cm.Name == name {
			return cm.Data
		}
	}
	t.Fatalf("no ConfigMap %s in %s", name, dir)
	return nil
}

// envVarTag is how shared/config names a variable a function reads.
var envVarTag = regexp.MustCompile(`envconfig:"([A-Z0-9_]+)"`)

// envVars lists the variables the deployed code reads: every envconfig tag
// in shared/ and functions/, but the dev runner's and tests'.
func envVars(t *testing.T) []string {
	t.Helper()
	var vars []string
	for _, dir := range []string{"shared", "functions"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(p string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && d.Name() == "dev" {
				return filepath.SkipDir
			}
			if d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
				return nil
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			for _, m := range envVarTag.FindAllSubmatch(b, -1) {
				if !slices.Contains(vars, string(m[1])) {
					vars = append(vars, string(m[1]))
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Contains(vars, "DATABASE_URL") {
		t.Fatalf("no envconfig tags found under shared/ and functions/ (found %v)", vars)
	}
	return vars
}

// The env the functions get must name only variables they read (a typo
// would silently fall back to a default) and no secrets.
func TestConfigMapKeys(t *testing.T) {
	known := envVars(t)
	var keys []string
	for k := range configMapData(t, "knative", "taskfn-config") {
		keys = append(keys, k)
		switch {
		case k == "PORT":
			t.Errorf("PORT: Knative sets it; a ConfigMap value would fight it")
		case k == "DATABASE_URL" || k == "DATABASE_READ_URL" || k == "SMTP_USERNAME" || k == "SMTP_PASSWORD":
			t.Errorf("%s holds a password: it belongs in the Secret", k)
		case !slices.Contains(known, k):
			t.Errorf("%s: not a variable taskfn reads", k)
		}
	}
	sort.Strings(keys)
	t.Logf("ConfigMap keys: %v", keys)
}

// syncEmbedded checks that manifest, after its line marker, holds source
// indented by indent spaces; with -update it rewrites that part.
func syncEmbedded(t *testing.T, manifest, marker, source string, indent int) {
	t.Helper()
	m, err := os.ReadFile(filepath.Join(root, manifest))
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(filepath.Join(root, source))
	if err != nil {
		t.Fatal(err)
	}
	head, _, ok := bytes.Cut(m, []byte("\n"+marker+"\n"))
	if !ok {
		t.Fatalf("%s: line %q not found", manifest, marker)
	}
	var want bytes.Buffer
	want.Write(head)
	want.WriteString("\n" + marker + "\n")
	pad := strings.Repeat(" ", indent)
	for _, line := range strings.SplitAfter(string(src), "\n") {
		if strings.TrimSpace(line) != "" {
			want.WriteString(pad)
		}
		want.WriteString(line)
	}
	if bytes.Equal(m, want.Bytes()) {
		return
	}
	if *update {
		if err := os.WriteFile(filepath.Join(root, manifest), want.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("rewrote %s from %s", manifest, source)
		return
	}
	t.Errorf("%s does not hold the current %s: run `make manifests-sync`", manifest, source)
}

func TestGatewayConfigMapMatchesTemplate(t *testing.T) {
	syncEmbedded(t, "knative/gateway/gateway.yaml", "  gateway.conf.template: |", "knative/gateway/gateway.conf.template", 4)
	// And what the API server stores is byte for byte the file.
	src, err := os.ReadFile(filepath.Join(root, "knative/gateway/gateway.conf.template"))
	if err != nil {
		t.Fatal(err)
	}
	if got := configMapData(t, "knative/gateway", "taskfn-gateway")["gateway.conf.template"]; got != string(src) {
		t.Error("ConfigMap taskfn-gateway decodes to something other than gateway.conf.template")
	}
}

// ko.yaml, decoded strictly: ko (viper) ignores a misspelt key.
type koConfig struct {
	DefaultBaseImage string   `json:"defaultBaseImage"`
	DefaultPlatforms []string `json:"defaultPlatforms"`
	DefaultEnv       []string `json:"defaultEnv"`
	DefaultFlags     []string `json:"defaultFlags"`
	DefaultLdflags   []string `json:"defaultLdflags"`
}

func loadKoConfig(t testing.TB) koConfig {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "ko.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var c koConfig
	if err := yaml.UnmarshalStrict(b, &c); err != nil {
		t.Fatalf("ko.yaml: %v", err)
	}
	return c
}

// versionFlag is the -X that stamps shared/version.
var versionFlag = regexp.MustCompile(`-X (` + regexp.QuoteMeta(modulePath) + `/shared/version\.Version)=(\S+)`)

func TestKoConfig(t *testing.T) {
	c := loadKoConfig(t)
	if !strings.Contains(c.DefaultBaseImage, "@sha256:") {
		t.Errorf("defaultBaseImage %q is not pinned by digest", c.DefaultBaseImage)
	}
	if want := []string{"linux/amd64", "linux/arm64"}; !slices.Equal(c.DefaultPlatforms, want) {
		t.Errorf("defaultPlatforms = %v, want %v", c.DefaultPlatforms, want)
	}
	if !slices.Contains(c.DefaultEnv, "CGO_ENABLED=0") {
		t.Error("defaultEnv lacks CGO_ENABLED=0: the base has no libc")
	}
	if !slices.Contains(c.DefaultFlags, "-trimpath") {
		t.Error("defaultFlags lacks -trimpath")
	}
	ld := strings.Join(c.DefaultLdflags, " ")
	if !strings.Contains(ld, "-s -w") || !versionFlag.MatchString(ld) {
		t.Errorf("defaultLdflags %q: want -s -w and -X %s/shared/version.Version=...", ld, modulePath)
	}
}

// The Dockerfile must give what ko gives: same base, same flags, same user.
// (It cannot be built here: there is no Docker daemon.)
func TestDockerfileMatchesKo(t *testing.T) {
	c := loadKoConfig(t)
	b, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	df := string(b)
	var froms []string
	for _, line := range strings.Split(df, "\n") {
		if f := strings.Fields(line); len(f) >= 2 && strings.EqualFold(f[0], "FROM") {
			img := f[1]
			if f[1] == "--platform=$BUILDPLATFORM" && len(f) > 2 {
				img = f[2]
			}
			froms = append(froms, img)
		}
	}
	if len(froms) < 2 {
		t.Fatalf("Dockerfile: want a build stage and a final stage, found FROM %v", froms)
	}
	if final := froms[len(froms)-1]; final != c.DefaultBaseImage {
		t.Errorf("Dockerfile's final FROM %q differs from ko.yaml's defaultBaseImage %q", final, c.DefaultBaseImage)
	}
	for _, want := range []string{"ARG FUNCTION", "CGO_ENABLED=0", "-trimpath", "-s -w", "USER 65532:65532"} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	koX := versionFlag.FindStringSubmatch(strings.Join(c.DefaultLdflags, " "))
	dfX := versionFlag.FindStringSubmatch(df)
	if koX == nil || dfX == nil || koX[1] != dfX[1] {
		t.Errorf("the version -X differs between ko.yaml (%v) and the Dockerfile (%v)", koX, dfX)
	}
}

// Every function pod is behind a NetworkPolicy that limits who reaches it.
func TestFunctionsBehindNetworkPolicy(t *testing.T) {
	docs := loadManifests(t, applyDirs...)
	var policies []*networkingv1.NetworkPolicy
	for _, d := range docs {
		if np, ok := d.obj.(*networkingv1.NetworkPolicy); ok {
			if !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) || len(np.Spec.Ingress) == 0 {
				t.Errorf("%s: want policyTypes [Ingress] with the allowed peers", d)
			}
			for _, r := range np.Spec.Ingress {
				if len(r.From) == 0 {
					t.Errorf("%s: an ingress rule without from admits every pod", d)
				}
			}
			policies = append(policies, np)
		}
	}
	for _, d := range docs {
		svc, ok := d.obj.(*servingv1.Service)
		if !ok {
			continue
		}
		covered := false
		for _, np := range policies {
			sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
			if err != nil {
				t.Fatal(err)
			}
			covered = covered || sel.Matches(labels.Set(svc.Spec.Template.Labels))
		}
		if !covered {
			t.Errorf("%s: no NetworkPolicy selects its pods", d)
		}
	}
}
