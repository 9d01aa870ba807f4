package config

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

type inner struct {
	URL    string        `envconfig:"TEST_CFG_URL" default:"postgres://u:hunter2@db:5432/x"`
	Secret string        `envconfig:"TEST_CFG_SECRET" secret:"true"`
	Wait   time.Duration `envconfig:"TEST_CFG_WAIT" default:"2s"`
}

type outer struct {
	DB   inner
	Port int    `envconfig:"TEST_CFG_PORT" default:"8080"`
	List string `envconfig:"TEST_CFG_LIST" default:"redis://:pw@a:1,redis://b:2"`
}

func TestLoadAndDescribe(t *testing.T) {
	t.Setenv("TEST_CFG_SECRET", "s3cr3t")
	t.Setenv("TEST_CFG_PORT", "9090")
	var c outer
	if err := Load(&c); err != nil {
		t.Fatal(err)
	}
	if c.Port != 9090 || c.DB.Secret != "s3cr3t" || c.DB.Wait != 2*time.Second {
		t.Fatalf("loaded %+v", c)
	}
	want := map[string]string{
		"TEST_CFG_URL":    "postgres://u:xxxxx@db:5432/x",
		"TEST_CFG_SECRET": "****",
		"TEST_CFG_WAIT":   "2s",
		"TEST_CFG_PORT":   "9090",
		"TEST_CFG_LIST":   "redis://:xxxxx@a:1,redis://b:2",
	}
	if d := cmp.Diff(want, Describe(&c)); d != "" {
		t.Errorf("describe (-want +got):\n%s", d)
	}
	t.Setenv("TEST_CFG_PORT", "eighty")
	if err := Load(&c); err == nil {
		t.Error("a non-numeric port loaded")
	}
}
