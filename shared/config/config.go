// Package config loads a function's configuration from the environment and
// renders it for the start-up log with secrets masked.
package config

import (
	"fmt"
	"reflect"

	"github.com/kelseyhightower/envconfig"
)

// Load fills spec (a pointer to a struct with envconfig tags) from the
// environment. Names are used as written in the tags, without a prefix.
func Load(spec any) error {
	if err := envconfig.Process("", spec); err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	return nil
}

// Describe returns spec's settings by environment name, for logging, with
// their secrets masked. A field's secret tag says what it holds:
// `secret:"true"` a secret, masked whole; `secret:"postgres"` a pgx
// connection string (URL or key=value), whose passwords are masked;
// `secret:"url"` URLs, whose passwords and secret query parameters are
// masked. Untagged fields named for a credential (…_PASSWORD, …_SECRET,
// …_TOKEN, …_KEY) are masked whole, and URLs in others are redacted. A
// value that cannot be parsed as its tag says is masked whole.
func Describe(spec any) map[string]string {
	out := map[string]string{}
	describe(reflect.Indirect(reflect.ValueOf(spec)), out)
	return out
}

func describe(v reflect.Value, out map[string]string) {
	t := v.Type()
	for i := range t.NumField() {
		f, fv := t.Field(i), v.Field(i)
		if !f.IsExported() {
			continue
		}
		name := f.Tag.Get("envconfig")
		if fv.Kind() == reflect.Struct && name == "" {
			describe(fv, out)
			continue
		}
		if name == "" || name == "-" {
			continue
		}
		out[name] = redact(name, f.Tag.Get("secret"), fmt.Sprint(fv.Interface()))
	}
}
