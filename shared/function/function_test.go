package function

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/taskfn/taskfn/shared/logging"
	"github.com/taskfn/taskfn/shared/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

type fullConfig struct {
	Config
	Secret string `envconfig:"FN_TEST_SECRET" secret:"true"`
}

func TestBase(t *testing.T) {
	var logs bytes.Buffer
	cfg := fullConfig{Config: Config{Log: logging.Config{Level: "info"}, DB: pgtest.NewConfig(t)}, Secret: "hunter2"}
	b, err := Open(context.Background(), "fn-test", cfg.Config, &cfg, &logs)
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	b.OnClose("first", func() error { order = append(order, "first"); return nil })
	b.OnClose("second", func() error { order = append(order, "second"); return errors.New("boom") })

	// The start-up line names the function and hides the secret.
	var start map[string]any
	if err := json.Unmarshal([]byte(strings.SplitN(logs.String(), "\n", 2)[0]), &start); err != nil {
		t.Fatal(err)
	}
	if start["service.name"] != "fn-test" || strings.Contains(logs.String(), "hunter2") {
		t.Errorf("start-up log %s", logs.String())
	}
	if err := b.Ready(context.Background()); err != nil {
		t.Errorf("ready: %v", err)
	}
	srv := httptest.NewServer(b.Handler())
	resp, err := srv.Client().Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	var body bytes.Buffer
	_, _ = body.ReadFrom(resp.Body)
	resp.Body.Close()
	srv.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(body.String(), `taskfn_pgxpool_max_conns{pool="primary"}`) {
		t.Errorf("/metrics %d lacks the pool statistics", resp.StatusCode)
	}

	b.Close()
	if strings.Join(order, ",") != "second,first" {
		t.Errorf("closed in order %v, want the reverse of registration", order)
	}
	if !strings.Contains(logs.String(), `"closing":"second"`) {
		t.Errorf("a failed close was not logged: %s", logs.String())
	}
	if err := b.Ready(context.Background()); err == nil {
		t.Error("ready after Close: the pools were not closed")
	}
}

// With LOG_FLUSH_INTERVAL, info lines wait in memory; Close writes them,
// and lines logged after Close are not held.
func TestBaseFlushesLogOnClose(t *testing.T) {
	var logs bytes.Buffer
	cfg := Config{Log: logging.Config{Level: "info", FlushInterval: time.Hour}, DB: pgtest.NewConfig(t)}
	b, err := Open(context.Background(), "fn-test", cfg, &cfg, &logs)
	if err != nil {
		t.Fatal(err)
	}
	b.Log.Info().Msg("serving")
	if logs.Len() != 0 {
		t.Fatalf("info lines written before a flush: %s", logs.String())
	}
	b.Close()
	if !strings.Contains(logs.String(), `"message":"starting"`) || !strings.Contains(logs.String(), `"message":"serving"`) {
		t.Fatalf("after Close: %s", logs.String())
	}
	b.Log.Info().Msg("stopped")
	if !strings.Contains(logs.String(), `"message":"stopped"`) {
		t.Errorf("a line after Close was held: %s", logs.String())
	}
}
