package validate

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kafkaeventingv1alpha1 "knative.dev/eventing-kafka-broker/control-plane/pkg/apis/eventing/v1alpha1"
	kafkav1 "knative.dev/eventing-kafka-broker/control-plane/pkg/apis/sources/v1"
	sourcesv1 "knative.dev/eventing/pkg/apis/sources/v1"
	duckv1 "knative.dev/pkg/apis/duck/v1"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"
)

// kafkaTopic is Strimzi's KafkaTopic (kafka.strimzi.io/v1beta2), restated:
// decoded strictly like every other manifest, its spec has exactly these
// fields upstream.
type kafkaTopic struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		TopicName  string         `json:"topicName"`
		Partitions int32          `json:"partitions"`
		Replicas   int32          `json:"replicas"`
		Config     map[string]any `json:"config"`
	} `json:"spec"`
	Status map[string]any `json:"status,omitempty"`
}

// eventObjects are the event plumbing among the applied manifests.
type eventObjects struct {
	services map[string]*servingv1.Service
	sources  []*kafkav1.KafkaSource
	pings    []*sourcesv1.PingSource
	sinks    map[string]*kafkaeventingv1alpha1.KafkaSink
	topics   map[string]*kafkaTopic // by topic name
}

func loadEventObjects(t *testing.T) eventObjects {
	t.Helper()
	o := eventObjects{services: map[string]*servingv1.Service{}, sinks: map[string]*kafkaeventingv1alpha1.KafkaSink{}, topics: map[string]*kafkaTopic{}}
	for _, d := range loadManifests(t, applyDirs...) {
		switch x := d.obj.(type) {
		case *servingv1.Service:
			o.services[x.Name] = x
		case *kafkav1.KafkaSource:
			o.sources = append(o.sources, x)
		case *sourcesv1.PingSource:
			o.pings = append(o.pings, x)
		case *kafkaeventingv1alpha1.KafkaSink:
			o.sinks[x.Name] = x
		case *kafkaTopic:
			t.Errorf("%s: KafkaTopics go in %s (applied in the Kafka cluster's namespace), not in %v", d, topicsDir, applyDirs)
		}
	}
	for _, d := range loadManifests(t, topicsDir) {
		kt, ok := d.obj.(*kafkaTopic)
		if !ok {
			t.Errorf("%s: only Strimzi KafkaTopics belong in %s", d, topicsDir)
			continue
		}
		name := kt.Spec.TopicName
		if name == "" {
			name = kt.Name
		}
		o.topics[name] = kt
	}
	return o
}

// refersToService checks that dest names a Knative Service of knative/.
func refersToService(o eventObjects, dest duckv1.Destination) (string, error) {
	r := dest.Ref
	if r == nil || r.APIVersion != "serving.knative.dev/v1" || r.Kind != "Service" {
		return "", fmt.Errorf("sink %+v: want a ref to a serving.knative.dev/v1 Service", dest)
	}
	if _, ok := o.services[r.Name]; !ok {
		return "", fmt.Errorf("sink: no Knative Service %s in knative/", r.Name)
	}
	return r.Name, nil
}

// The event sources agree with the functions' configuration and with each
// other: brokers and topic names as in the ConfigMap, sinks that exist,
// consumer groups named taskfn-<source>, dead letters to a KafkaSink on a
// topic Strimzi creates, every event sink fed by something.
func TestEventSources(t *testing.T) {
	cm := configMapData(t, "knative", "taskfn-config")
	brokers := strings.Split(cm["KAFKA_BROKERS"], ",")
	wantTopics := []string{cm["KAFKA_TASKS_TOPIC"], cm["KAFKA_REPORTS_TOPIC"], cm["KAFKA_COMMANDS_TOPIC"]}
	if slices.Contains(wantTopics, "") || cm["KAFKA_BROKERS"] == "" {
		t.Fatalf("the ConfigMap lacks KAFKA_BROKERS, KAFKA_TASKS_TOPIC, KAFKA_REPORTS_TOPIC or KAFKA_COMMANDS_TOPIC")
	}
	o := loadEventObjects(t)
	fed := map[string][]string{} // Service → what sends it events
	groups := map[string]string{}
	for _, s := range o.sources {
		where := "KafkaSource " + s.Name
		if !slices.Equal(s.Spec.BootstrapServers, brokers) {
			t.Errorf("%s: bootstrapServers %v, want KAFKA_BROKERS %v", where, s.Spec.BootstrapServers, brokers)
		}
		for _, tp := range s.Spec.Topics {
			if !slices.Contains(wantTopics, tp) {
				t.Errorf("%s: topic %q is not KAFKA_TASKS_TOPIC, KAFKA_REPORTS_TOPIC or KAFKA_COMMANDS_TOPIC", where, tp)
			}
			if _, ok := o.topics[tp]; !ok {
				t.Errorf("%s: topic %q has no KafkaTopic in %s", where, tp, topicsDir)
			}
		}
		if want := "taskfn-" + s.Name; s.Spec.ConsumerGroup != want {
			t.Errorf("%s: consumerGroup %q, want %q", where, s.Spec.ConsumerGroup, want)
		}
		if prev, ok := groups[s.Spec.ConsumerGroup]; ok {
			t.Errorf("%s and %s share consumer group %s: each would get only part of the events", where, prev, s.Spec.ConsumerGroup)
		}
		groups[s.Spec.ConsumerGroup] = where
		fn, err := refersToService(o, s.Spec.Sink)
		if err != nil {
			t.Errorf("%s: %v", where, err)
		} else {
			fed[fn] = append(fed[fn], where)
			if !strings.HasPrefix(s.Name, fn) {
				t.Errorf("%s: name it after its function %s (%s or %s-<topic>)", where, fn, fn, fn)
			}
		}
		if s.Labels["app.kubernetes.io/name"] != fn {
			t.Errorf("%s: label app.kubernetes.io/name %q, want its function %q", where, s.Labels["app.kubernetes.io/name"], fn)
		}
		dl := s.Spec.Delivery
		if dl == nil || dl.Retry == nil || *dl.Retry < 1 || dl.BackoffPolicy == nil || string(*dl.BackoffPolicy) != "exponential" ||
			dl.BackoffDelay == nil || dl.Timeout == nil || dl.DeadLetterSink == nil {
			t.Errorf("%s: want delivery with retry, exponential backoffPolicy, backoffDelay, timeout and deadLetterSink", where)
			continue
		}
		r := dl.DeadLetterSink.Ref
		if r == nil || r.Kind != "KafkaSink" || r.APIVersion != "eventing.kafka.knative.dev/v1alpha1" {
			t.Errorf("%s: deadLetterSink %+v: want a ref to a KafkaSink", where, dl.DeadLetterSink)
			continue
		}
		ks, ok := o.sinks[r.Name]
		if !ok {
			t.Errorf("%s: deadLetterSink: no KafkaSink %s in kafka-sources/", where, r.Name)
			continue
		}
		if len(s.Spec.Topics) == 1 && ks.Spec.Topic != s.Spec.Topics[0]+".dlq" {
			t.Errorf("%s: dead letters of %s go to %s, want %s.dlq", where, s.Spec.Topics[0], ks.Spec.Topic, s.Spec.Topics[0])
		}
	}
	if len(o.sources) == 0 {
		t.Error("no KafkaSource in kafka-sources/")
	}
	// notify keeps per-task order.
	for _, s := range o.sources {
		if s.Spec.Sink.Ref != nil && s.Spec.Sink.Ref.Name == "notify" &&
			(s.Spec.Ordering == nil || string(*s.Spec.Ordering) != "ordered" || s.Annotations["kafka.eventing.knative.dev/delivery.order"] != "ordered") {
			t.Errorf("KafkaSource %s: notify needs ordered delivery (spec.ordering and the delivery.order annotation)", s.Name)
		}
	}
	for name, ks := range o.sinks {
		if !slices.Equal(ks.Spec.BootstrapServers, brokers) {
			t.Errorf("KafkaSink %s: bootstrapServers %v, want KAFKA_BROKERS %v", name, ks.Spec.BootstrapServers, brokers)
		}
		if _, ok := o.topics[ks.Spec.Topic]; !ok {
			t.Errorf("KafkaSink %s: topic %q has no KafkaTopic in %s", name, ks.Spec.Topic, topicsDir)
		}
	}
	for _, p := range o.pings {
		fn, err := refersToService(o, p.Spec.Sink)
		if err != nil {
			t.Errorf("PingSource %s: %v", p.Name, err)
			continue
		}
		if p.Name != fn {
			t.Errorf("PingSource %s: name it after its function %s", p.Name, fn)
		}
		fed[fn] = append(fed[fn], "PingSource "+p.Name)
	}
	// An event sink (a function the gateway does not route to) without a
	// source would never run; a routed function fed events would be odd.
	routed := gatewayFunctions(t)
	for name := range o.services {
		switch {
		// ingest-events takes the same commands both ways (docs/producers.md).
		case slices.Contains(routed, name) && len(fed[name]) > 0 && name != "ingest-events":
			t.Errorf("%s is routed by the gateway and also fed by %v", name, fed[name])
		case !slices.Contains(routed, name) && len(fed[name]) == 0:
			t.Errorf("Knative Service %s is neither routed by the gateway nor fed by a KafkaSource or PingSource", name)
		}
	}
	t.Logf("event sinks: %v", fed)
}

// The Strimzi topics: the ones the functions publish to, their dead-letter
// topics, with partitions, replicas and a retention.
func TestKafkaTopics(t *testing.T) {
	cm := configMapData(t, "knative", "taskfn-config")
	o := loadEventObjects(t)
	var want []string
	for _, k := range []string{"KAFKA_TASKS_TOPIC", "KAFKA_REPORTS_TOPIC", "KAFKA_COMMANDS_TOPIC"} {
		want = append(want, cm[k], cm[k]+".dlq")
	}
	for _, name := range want {
		kt, ok := o.topics[name]
		if !ok {
			t.Errorf("no KafkaTopic %s in %s", name, topicsDir)
			continue
		}
		if kt.Spec.Partitions < 1 || kt.Spec.Replicas < 1 {
			t.Errorf("KafkaTopic %s: partitions %d, replicas %d: both must be set", name, kt.Spec.Partitions, kt.Spec.Replicas)
		}
		if _, ok := kt.Spec.Config["retention.ms"]; !ok {
			t.Errorf("KafkaTopic %s: no retention.ms", name)
		}
		if kt.Labels["strimzi.io/cluster"] == "" {
			t.Errorf("KafkaTopic %s: no strimzi.io/cluster label: the Topic Operator would ignore it", name)
		}
		if !strings.Contains(cm["KAFKA_BROKERS"], kt.Labels["strimzi.io/cluster"]+"-kafka-bootstrap") {
			t.Errorf("KafkaTopic %s: cluster %q is not the one KAFKA_BROKERS (%s) names", name, kt.Labels["strimzi.io/cluster"], cm["KAFKA_BROKERS"])
		}
		if kt.Labels["app.kubernetes.io/part-of"] != "taskfn" {
			t.Errorf("KafkaTopic %s: label app.kubernetes.io/part-of=taskfn missing", name)
		}
	}
	for name := range o.topics {
		if !slices.Contains(want, name) {
			t.Errorf("KafkaTopic %s: no function or source uses it", name)
		}
	}
}

// Every event delivery is authenticated: each source names its sink's
// audience (taskfn-<function>, what the function's sender check expects),
// each sink serves through function.ServeSink, and each sink's pod gets
// the cluster CA and a token at the paths SINK_OIDC_CA_FILE and
// SINK_OIDC_TOKEN_FILE name, to fetch the issuer's keys with.
func TestSinksCheckSenderIdentity(t *testing.T) {
	cm := configMapData(t, "knative", "taskfn-config")
	if cm["SINK_OIDC_ISSUER"] == "" || cm["SINK_ALLOWED_SENDERS"] == "" || cm["SINK_OIDC_AUDIENCE"] != "" {
		t.Errorf("ConfigMap: want SINK_OIDC_ISSUER and SINK_ALLOWED_SENDERS set, SINK_OIDC_AUDIENCE unset (each sink has its own)")
	}
	o := loadEventObjects(t)
	sinks := map[string]bool{}
	check := func(where string, dest duckv1.Destination) {
		fn, err := refersToService(o, dest)
		if err != nil {
			return // TestEventSources reports it
		}
		sinks[fn] = true
		if want := "taskfn-" + fn; dest.Audience == nil || *dest.Audience != want {
			t.Errorf("%s: spec.sink.audience %v, want %q", where, dest.Audience, want)
		}
	}
	for _, s := range o.sources {
		check("KafkaSource "+s.Name, s.Spec.Sink)
	}
	for _, p := range o.pings {
		check("PingSource "+p.Name, p.Spec.Sink)
	}
	for fn := range sinks {
		main, err := os.ReadFile(filepath.Join(root, "functions", fn, "main.go"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(main, []byte("ServeSink(")) {
			t.Errorf("functions/%s: an event sink must serve through function.ServeSink", fn)
		}
		ps := o.services[fn].Spec.Template.Spec.PodSpec
		mounted := map[string]string{} // file → volume source kind
		for _, c := range ps.Containers {
			for _, m := range c.VolumeMounts {
				for _, v := range ps.Volumes {
					if v.Name != m.Name || v.Projected == nil {
						continue
					}
					for _, src := range v.Projected.Sources {
						switch {
						case src.ServiceAccountToken != nil:
							mounted[filepath.Join(m.MountPath, src.ServiceAccountToken.Path)] = "token"
						case src.ConfigMap != nil && src.ConfigMap.Name == "kube-root-ca.crt":
							for _, it := range src.ConfigMap.Items {
								mounted[filepath.Join(m.MountPath, it.Path)] = "ca"
							}
						}
					}
				}
			}
		}
		if mounted[cm["SINK_OIDC_TOKEN_FILE"]] != "token" || mounted[cm["SINK_OIDC_CA_FILE"]] != "ca" {
			t.Errorf("Service %s: mounts %v, want the token at SINK_OIDC_TOKEN_FILE and kube-root-ca.crt at SINK_OIDC_CA_FILE", fn, mounted)
		}
	}
	if len(sinks) < 6 {
		t.Errorf("sender identity checked on %d sinks, want every event sink", len(sinks))
	}
}
