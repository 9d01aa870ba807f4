package config_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/cache"
	"github.com/taskfn/taskfn/shared/cleanup"
	"github.com/taskfn/taskfn/shared/config"
	"github.com/taskfn/taskfn/shared/function"
	"github.com/taskfn/taskfn/shared/kafka"
	"github.com/taskfn/taskfn/shared/notify"
	"github.com/taskfn/taskfn/shared/outbox"
	"github.com/taskfn/taskfn/shared/report"
)

// everything is every envconfig struct in shared/, as functions embed them.
type everything struct {
	function.Config
	Cache   cache.Config
	Kafka   kafka.Config
	Auth    auth.Config
	SMTP    notify.SMTPConfig
	Relay   outbox.RelayConfig
	Report  report.WorkerConfig
	Cleanup cleanup.Retention
}

// set puts value into the setting named env.
var set = map[string]func(*everything, string){
	"DATABASE_URL":      func(e *everything, v string) { e.DB.URL = v },
	"DATABASE_READ_URL": func(e *everything, v string) { e.DB.ReadURL = v },
	"REDIS_URL":         func(e *everything, v string) { e.Cache.RedisURL = v },
	"SMTP_PASSWORD":     func(e *everything, v string) { e.SMTP.Password = v },
}

// The forms pgx accepts for DATABASE_URL and DATABASE_READ_URL; "hunter2"
// is the secret in each.
var postgresForms = []struct{ name, value, want string }{
	{"URL, password in userinfo",
		"postgres://u:hunter2@db:5432/x?sslmode=disable", "postgres://u:xxxxx@db:5432/x?sslmode=disable"},
	{"URL, password query parameter",
		"postgres://u@db:5432/x?sslmode=disable&password=hunter2", "postgres://u@db:5432/x?sslmode=disable&password=xxxxx"},
	{"postgresql URL, sslpassword",
		"postgresql://u@db/x?sslpassword=hunter2&application_name=list-tasks", "postgresql://u@db/x?sslpassword=xxxxx&application_name=list-tasks"},
	{"URL, percent-encoded key",
		"postgres://u@db/x?pass%77ord=hunter2", "postgres://u@db/x?pass%77ord=xxxxx"},
	{"URL, both places, escaped",
		"postgres://u:hun%40ter2@db/x?password=hunter2", "postgres://u:xxxxx@db/x?password=xxxxx"},
	{"URL, several hosts",
		"postgres://u:hunter2@db1:5432,db2:5433/x?target_session_attrs=read-write", "postgres://u:xxxxx@db1:5432,db2:5433/x?target_session_attrs=read-write"},
	{"URL, IPv6 host",
		"postgres://u@[::1]:5432/x?password=hunter2", "postgres://u@[::1]:5432/x?password=xxxxx"},
	{"URL without a password",
		"postgres://postgres@127.0.0.1:5432/taskfn?sslmode=disable", "postgres://postgres@127.0.0.1:5432/taskfn?sslmode=disable"},
	{"key=value",
		"host=db user=u password=hunter2 dbname=x sslmode=disable", "host=db user=u password=xxxxx dbname=x sslmode=disable"},
	{"key=value, quoted, spaces and escaped quotes",
		`host=db password='hunter2 is \'quoted\'' dbname=x`, "host=db password=xxxxx dbname=x"},
	{"key=value, spaces around =",
		"host=db password = hunter2 sslpassword= hunter2", "host=db password = xxxxx sslpassword= xxxxx"},
	{"key=value, escaped space",
		`password=hunter2\ more host=db`, "password=xxxxx host=db"},
	{"key=value, a key pgx passes to the server",
		"host=db PASSWORD=hunter2", "host=db PASSWORD=xxxxx"},
	{"key=value, unterminated quote", "host=db password='hunter2", "****"},
	{"URL, port not a number", "postgres://u:hunter2@db:port/x", "****"},
	{"URL, query pair without =", "postgres://u@db/x?password=hunter2&sslmode", "****"},
	// pgx ends the host list at the first '/': the "password" is a port.
	{"URL, '/' in an unescaped password", "postgres://u:hunter2/x@db/y", "****"},
	// pgx takes the first '@' before any '/' for the end of the user
	// name: this user name is "db?password=hunter2".
	{"URL, a query before the '@'", "postgres://db?password=hunter2@elsewhere/x", "****"},
	{"empty", "", ""},
}

func TestDescribeRedactsSecrets(t *testing.T) {
	t.Parallel()
	type form struct{ name, env, value, want string }
	var tests []form
	for _, env := range []string{"DATABASE_URL", "DATABASE_READ_URL"} {
		for _, f := range postgresForms {
			tests = append(tests, form{f.name, env, f.value, f.want})
		}
	}
	tests = append(tests, []form{
		{"password in userinfo", "REDIS_URL", "redis://:hunter2@cache:6379/0", "redis://:xxxxx@cache:6379/0"},
		{"user and password, TLS", "REDIS_URL", "rediss://taskfn:hunter2@cache:6380/1", "rediss://taskfn:xxxxx@cache:6380/1"},
		{"unix socket", "REDIS_URL", "unix://:hunter2@/run/redis.sock?db=2", "unix://:xxxxx@/run/redis.sock?db=2"},
		{"password query parameter", "REDIS_URL", "redis://cache:6379/0?password=hunter2", "redis://cache:6379/0?password=xxxxx"},
		{"no scheme", "REDIS_URL", ":hunter2@cache:6379", "****"},
		{"unparsable", "REDIS_URL", "redis://:hun ter2@cache", "****"},
		{"the default", "REDIS_URL", "redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"},
		{"SMTP password", "SMTP_PASSWORD", "hunter2", "****"},
	}...)
	for _, tc := range tests {
		t.Run(tc.env+"/"+tc.name, func(t *testing.T) {
			t.Parallel()
			var all everything
			set[tc.env](&all, tc.value)
			got := config.Describe(&all)[tc.env]
			if got != tc.want {
				t.Errorf("%s=%s\n logged %s\n want   %s", tc.env, tc.value, got, tc.want)
			}
			if strings.Contains(got, "hunter2") {
				t.Errorf("the secret is logged: %s", got)
			}
		})
	}
}

// Settings named for a credential are masked whole without a tag, and a
// value that still shows a password key is masked whole; other names keep
// their values even when they contain KEY or TOKEN.
func TestDescribeMasksByName(t *testing.T) {
	t.Parallel()
	var c struct {
		Secret    string `envconfig:"WEBHOOK_SIGNING_SECRET"`
		Token     string `envconfig:"API_TOKEN"`
		Key       string `envconfig:"ENCRYPTION_KEY"`
		Prefix    string `envconfig:"CACHE_KEY_PREFIX"`
		CacheSize int    `envconfig:"OIDC_TOKEN_CACHE_SIZE"`
		DSN       string `envconfig:"REPLICA_DSN"`
		Empty     string `envconfig:"UNSET_TOKEN"`
	}
	c.Secret, c.Token, c.Key = "hunter2", "hunter2", "hunter2"
	c.Prefix, c.CacheSize = "taskfn:", 10000
	c.DSN = "host=db password=hunter2"
	want := map[string]string{
		"WEBHOOK_SIGNING_SECRET": "****",
		"API_TOKEN":              "****",
		"ENCRYPTION_KEY":         "****",
		"CACHE_KEY_PREFIX":       "taskfn:",
		"OIDC_TOKEN_CACHE_SIZE":  "10000",
		"REPLICA_DSN":            "****",
		"UNSET_TOKEN":            "",
	}
	if d := cmp.Diff(want, config.Describe(&c)); d != "" {
		t.Errorf("describe (-want +got):\n%s", d)
	}
}
