package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/taskfn/taskfn/migrations"
	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/cleanup"
	"github.com/taskfn/taskfn/shared/commentapi"
	"github.com/taskfn/taskfn/shared/devissuer"
	"github.com/taskfn/taskfn/shared/devkafka"
	"github.com/taskfn/taskfn/shared/digest"
	"github.com/taskfn/taskfn/shared/digestsend"
	"github.com/taskfn/taskfn/shared/fieldapi"
	"github.com/taskfn/taskfn/shared/function"
	"github.com/taskfn/taskfn/shared/httpx"
	"github.com/taskfn/taskfn/shared/ingest"
	"github.com/taskfn/taskfn/shared/kafka"
	"github.com/taskfn/taskfn/shared/kafkasource"
	"github.com/taskfn/taskfn/shared/notify"
	"github.com/taskfn/taskfn/shared/outbox"
	"github.com/taskfn/taskfn/shared/pg"
	"github.com/taskfn/taskfn/shared/projectapi"
	"github.com/taskfn/taskfn/shared/ratelimit"
	"github.com/taskfn/taskfn/shared/recur"
	"github.com/taskfn/taskfn/shared/remind"
	"github.com/taskfn/taskfn/shared/report"
	"github.com/taskfn/taskfn/shared/report/render"
	"github.com/taskfn/taskfn/shared/task"
	"github.com/taskfn/taskfn/shared/taskapi"
	"github.com/taskfn/taskfn/shared/webhook"
	"github.com/taskfn/taskfn/shared/webhookapi"
)

// devConfig holds every function's configuration (they read the same
// variables) plus the dev runner's own.
type devConfig struct {
	Task    taskapi.Config
	Kafka   kafka.Config
	Notify  notify.Config
	Report  report.Config
	Cleanup cleanup.Config
	Relay   outbox.RelayConfig
	Remind  remind.Config
	Sender  auth.SenderConfig
	Webhook webhook.Config
	Ingest  ingest.SinkConfig
	Digest  digestsend.TickConfig

	Addr string `envconfig:"DEV_ADDR" default:"127.0.0.1:8080"`
	// ExternalIssuer reads OIDC_ISSUER without the default, to tell whether
	// the operator named a real Keycloak.
	ExternalIssuer  string        `envconfig:"OIDC_ISSUER"`
	RealmFile       string        `envconfig:"DEV_REALM_FILE" default:"knative/keycloak/realm-taskfn.json"`
	KafkaPort       int           `envconfig:"DEV_KAFKA_PORT" default:"0"`
	RelayInterval   time.Duration `envconfig:"DEV_RELAY_INTERVAL" default:"10s"`
	CleanupInterval time.Duration `envconfig:"DEV_CLEANUP_INTERVAL" default:"1h"`
	RemindInterval  time.Duration `envconfig:"DEV_REMIND_INTERVAL" default:"1m"`
	// DigestInterval ticks send-digests; a cluster's PingSource ticks
	// every 15 minutes.
	DigestInterval time.Duration `envconfig:"DEV_DIGEST_INTERVAL" default:"1m"`
	// WebhookRetryInterval ticks retry-webhooks; a cluster's PingSource
	// ticks every minute.
	WebhookRetryInterval time.Duration `envconfig:"DEV_WEBHOOK_RETRY_INTERVAL" default:"5s"`
}

// devWebhookKey seals webhook secrets when WEBHOOK_SECRET_KEY is unset:
// a fixed key, so webhooks made in one run still sign in the next. Never
// a cluster's (its Secret holds a random one).
const devWebhookKey = "ZGV2LW9ubHktd2ViaG9vay1rZXktbm90LWEtc2VjcmU="

// devRealm is the realm the development issuer serves.
const devRealm = "taskfn"

// eventingPath is where the dev runner serves the issuer of its sources'
// sender-identity tokens, which stands for the cluster's service-account
// issuer; devNamespace is the namespace their subjects name.
const (
	eventingPath = "/eventing"
	devNamespace = "dev"
)

// Where the dev runner mounts the event sinks; in a cluster each is its
// own Knative Service that only its KafkaSource or PingSource reaches.
const (
	notifySink  = "/_dev/notify"
	reportSink  = "/_dev/build-report"
	relaySink   = "/_dev/relay-outbox"
	cleanupSink = "/_dev/cleanup"
	recurSink   = "/_dev/recur"
	remindSink  = "/_dev/remind"
	digestSink  = "/_dev/send-digests"
	// Webhooks out: the sink of the tasks topic and the retry tick.
	deliverWebhooksSink = "/_dev/deliver-webhooks"
	retryWebhooksSink   = "/_dev/retry-webhooks"
	ingestSink          = "/_dev/ingest-events"
)

// serve runs everything on cfg.Addr, or on ln when a test passes one.
func serve(ctx context.Context, cfg devConfig, ln net.Listener) error {
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", cfg.Addr); err != nil {
			return fmt.Errorf("listen %s: %w", cfg.Addr, err)
		}
	}
	base := "http://" + ln.Addr().String()
	mux := http.NewServeMux()
	if cfg.ExternalIssuer == "" {
		realm, err := devissuer.LoadRealm(cfg.RealmFile)
		if err != nil {
			return fmt.Errorf("dev issuer: %w", err)
		}
		cfg.Task.Auth.Issuer = base + "/realms/" + devRealm
		iss, err := devissuer.New(cfg.Task.Auth.Issuer, realm)
		if err != nil {
			return fmt.Errorf("dev issuer: %w", err)
		}
		mux.Handle("/realms/"+devRealm+"/", iss)
	}
	// The sinks check sender tokens as in a cluster, so a forged event
	// POSTed to /_dev/notify is refused here too.
	cfg.Sender.Issuer, cfg.Sender.Audience = base+eventingPath, ""
	eventing, err := devissuer.New(cfg.Sender.Issuer, &devissuer.Realm{Realm: "eventing", Enabled: true})
	if err != nil {
		return fmt.Errorf("sender issuer: %w", err)
	}
	mux.Handle(eventingPath+"/", eventing)
	senders := devissuer.NewSenderTokens(eventing, devNamespace)
	// One process, one base: every function shares the task functions'
	// server, log and database settings (and the log shows those).
	cfg.Notify.Config, cfg.Report.Config, cfg.Cleanup.Config = cfg.Task.Config, cfg.Task.Config, cfg.Task.Config
	cfg.Notify.Auth, cfg.Report.Auth = cfg.Task.Auth, cfg.Task.Auth
	// Webhook receivers on this machine: plain http to loopback, which a
	// cluster never allows.
	cfg.Webhook.InsecureLoopback = true
	if cfg.Webhook.SecretKey == "" {
		cfg.Webhook.SecretKey = devWebhookKey
	}
	if err := pg.EnsureDatabase(ctx, cfg.Task.DB.URL); err != nil {
		return fmt.Errorf("database: %w", err)
	}
	if err := migrations.Apply(ctx, cfg.Task.DB.URL); err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	kc := &cfg.Kafka
	if len(kc.Brokers) == 0 {
		b, err := devkafka.Start(devkafka.Config{Port: cfg.KafkaPort, Topics: []string{
			kc.TasksTopic, kc.ReportsTopic, dlq(kc.TasksTopic), dlq(kc.ReportsTopic), cfg.Ingest.Topic, dlq(cfg.Ingest.Topic)}})
		if err != nil {
			return fmt.Errorf("embedded kafka: %w", err)
		}
		defer b.Close()
		kc.Brokers = b.Brokers()
	}

	b, err := function.Open(ctx, "dev", cfg.Task.Config, &cfg, os.Stdout)
	if err != nil {
		return err
	}
	defer b.Close()
	routes, err := wireFunctions(ctx, b, cfg)
	if err != nil {
		return err
	}
	mux.Handle("/", b.Handler(routes...))
	// Deferred after the base and the broker: the sources stop before the
	// pools and the broker close.
	stopSources, err := startSources(ctx, b, cfg, base, senders)
	if err != nil {
		return err
	}
	defer stopSources()

	if cfg.ExternalIssuer == "" {
		b.Log.Info().Str("issuer", cfg.Task.Auth.Issuer).
			Str("token_endpoint", cfg.Task.Auth.Issuer+"/protocol/openid-connect/token").
			Msg("development issuer: users alice (admin), bob (manager), carol and dave (members); password = user name")
	}
	b.Log.Info().Strs("kafka", kc.Brokers).Msg("events flow through Kafka to the sinks under /_dev/")
	return httpx.ServeListener(ctx, ln, mux, b.Log, cfg.Task.Server.ShutdownTimeout)
}

// wireFunctions wires every function on b and returns all their routes:
// the API routes at their production paths, the event sinks under /_dev/.
func wireFunctions(ctx context.Context, b *function.Base, cfg devConfig) ([]httpx.Route, error) {
	om := outbox.NewMetrics(b.Registry)
	pub, err := kafka.Open(b, cfg.Kafka, om)
	if err != nil {
		return nil, err
	}
	// One limiter for all: a caller's quotas are the same whichever
	// function serves it.
	lim, err := ratelimit.Open(b, cfg.Task.RateLimit)
	if err != nil {
		return nil, err
	}
	tasks, err := taskapi.Wire(ctx, b, cfg.Task, lim, task.WithTopic(cfg.Kafka.TasksTopic), task.WithPublisher(pub))
	if err != nil {
		return nil, err
	}
	// The task routes' resolver: a member change is in force for them at once.
	projects, err := projectapi.Wire(b, projectapi.Config{Config: cfg.Task.Config, Auth: cfg.Task.Auth, Projects: cfg.Task.Projects}, lim, tasks.Roles)
	if err != nil {
		return nil, err
	}
	comments, err := commentapi.Wire(b, commentapi.Config{Config: cfg.Task.Config, Auth: cfg.Task.Auth, Kafka: cfg.Kafka}, lim, tasks.Cache, tasks.Roles, pub)
	if err != nil {
		return nil, err
	}
	inbox, err := notify.Wire(b, cfg.Notify, lim)
	if err != nil {
		return nil, err
	}
	cfg.Report.Worker.Render = render.Formats()
	reports, err := report.Wire(b, cfg.Report, lim, report.WithTopic(cfg.Kafka.ReportsTopic), report.WithPublisher(pub))
	if err != nil {
		return nil, err
	}
	cleaner, err := cleanup.NewService(b, cfg.Cleanup, tasks.Cache)
	if err != nil {
		return nil, err
	}
	relay, err := outbox.NewRelayHandler(b.DB.Primary, pub, om, cfg.Relay)
	if err != nil {
		return nil, err
	}
	recurs, err := recur.NewSink(tasks.Store)
	if err != nil {
		return nil, err
	}
	reminders, err := remind.NewHandler(tasks.Store, cfg.Remind)
	if err != nil {
		return nil, err
	}
	digestStore, err := digest.NewStore(b.DB, cfg.Kafka.TasksTopic, pub)
	if err != nil {
		return nil, err
	}
	prefs, err := digest.Wire(b, digest.Config{Config: cfg.Task.Config, Auth: cfg.Task.Auth}, lim, digestStore)
	if err != nil {
		return nil, err
	}
	digests, err := digestsend.NewTick(digestStore, tasks.Store, tasks.Roles, b.DB, cfg.Digest)
	if err != nil {
		return nil, err
	}
	hooks, err := webhookapi.Wire(b, webhookapi.Config{Config: cfg.Task.Config, Auth: cfg.Task.Auth, Webhook: cfg.Webhook}, lim, tasks.Roles)
	if err != nil {
		return nil, err
	}
	fields, err := fieldapi.Wire(b, fieldapi.Config{Config: cfg.Task.Config, Auth: cfg.Task.Auth}, lim, tasks.Roles, tasks.Cache)
	if err != nil {
		return nil, err
	}
	delivery, err := webhook.Wire(b, cfg.Webhook, tasks.Roles, cfg.Kafka.TasksTopic, pub)
	if err != nil {
		return nil, err
	}
	producers, err := ingest.Wire(b, ingest.Config{Config: cfg.Task.Config, Auth: cfg.Task.Auth, Kafka: cfg.Kafka, Ingest: cfg.Ingest},
		lim, tasks.Store, tasks.Cache, tasks.Roles, pub)
	if err != nil {
		return nil, err
	}
	routes := append(slices.Clone(tasks.Routes), projects.Routes...)
	routes = append(routes, hooks...)
	routes = append(routes, fields...)
	routes = append(routes, comments...)
	routes = append(routes, inbox.Routes...)
	routes = append(routes, reports.Routes...)
	routes = append(routes, producers.Routes...)
	routes = append(routes, prefs.Routes...)
	for _, s := range []struct {
		name  string
		route httpx.Route
	}{
		{"notify", at(notifySink, inbox.Sink.Route())},
		{"build-report", at(reportSink, reports.Sink.Route())},
		{"cleanup", at(cleanupSink, cleaner.Handler.Route())},
		{"recur", at(recurSink, recurs.Route())},
		{"remind", at(remindSink, reminders.Route())},
		{"send-digests", at(digestSink, digests.Route())},
		{"deliver-webhooks", at(deliverWebhooksSink, delivery.Sink.Route())},
		{"retry-webhooks", at(retryWebhooksSink, delivery.Deliverer.TickRoute())},
		{ingest.Name, at(ingestSink, producers.Sink.Route())},
		{"relay-outbox", httpx.Route{Name: "relay-outbox", Method: http.MethodPost, Path: relaySink, Handler: relay}},
	} {
		r, err := function.GuardSink(cfg.Sender, s.name, s.route)
		if err != nil {
			return nil, err
		}
		routes = append(routes, r)
	}
	return routes, nil
}

// startSources runs the KafkaSources and PingSources of a cluster as
// goroutines, delivering to the sinks under base until ctx ends or stop is
// called; stop waits for them to return.
func startSources(ctx context.Context, b *function.Base, cfg devConfig, base string, senders *devissuer.SenderTokens) (func(), error) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	stop := func() {
		cancel()
		wg.Wait()
	}
	kc := cfg.Kafka
	ksm := kafkasource.NewMetrics(b.Registry)
	for _, s := range []struct {
		name, topic, group, sink, fn string
		timeout                      time.Duration
	}{
		{"notify", kc.TasksTopic, "taskfn-notify", notifySink, "notify", time.Minute},
		{"notify-reports", kc.ReportsTopic, "taskfn-notify-reports", notifySink, "notify", time.Minute},
		{"recur", kc.TasksTopic, "taskfn-recur", recurSink, "recur", time.Minute},
		{"deliver-webhooks", kc.TasksTopic, "taskfn-deliver-webhooks", deliverWebhooksSink, "deliver-webhooks", time.Minute},
		// Ordered per key, as the producers key their commands.
		{ingest.Name, cfg.Ingest.Topic, "taskfn-ingest-events", ingestSink, ingest.Name, time.Minute},
		// The build-report sink answers once the report is stored.
		{"build-report", kc.ReportsTopic, "taskfn-build-report", reportSink, "build-report", cfg.Report.Worker.BuildTimeout + time.Minute},
	} {
		src, err := kafkasource.New(kafkasource.Config{Name: s.name, Kafka: kc, Topic: s.topic, Group: s.group,
			Sink: base + s.sink, DeadLetterTopic: dlq(s.topic), Retry: 5, BackoffDelay: 200 * time.Millisecond,
			Timeout: s.timeout, Token: senders.For(s.name, "kafkasource", auth.DefaultAudience(s.fn))}, ksm, b.Log)
		if err != nil {
			stop()
			return nil, err
		}
		wg.Go(func() { _ = src.Run(ctx) })
	}
	for _, p := range []struct {
		name, sink string
		every      time.Duration
	}{{"relay-outbox", relaySink, cfg.RelayInterval}, {"cleanup", cleanupSink, cfg.CleanupInterval}, {"remind", remindSink, cfg.RemindInterval},
		{"send-digests", digestSink, cfg.DigestInterval},
		{"retry-webhooks", retryWebhooksSink, cfg.WebhookRetryInterval}} {
		wg.Go(func() {
			_ = kafkasource.Ping(ctx, kafkasource.PingConfig{Name: p.name, Sink: base + p.sink, Interval: p.every,
				Retry: 3, BackoffDelay: 500 * time.Millisecond, Timeout: time.Minute,
				Token: senders.For(p.name, "pingsource", auth.DefaultAudience(p.name))}, ksm, b.Log)
		})
	}
	return stop, nil
}

// at moves a function's route to path, as the dev runner mounts it.
func at(path string, r httpx.Route) httpx.Route {
	r.Path = path
	return r
}

func dlq(topic string) string { return topic + ".dlq" }
