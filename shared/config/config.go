// Package config loads a function's configuration from the environment and
// renders it for the start-up log with secrets masked.
package config

import (
	"fmt"
	"net/url"
	"reflect"
	"strings"

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

// Describe returns spec's settings by environment name, for logging: fields
// tagged `secret:"true"` are masked and passwords inside URLs are redacted.
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
		s := fmt.Sprint(fv.Interface())
		switch {
		case f.Tag.Get("secret") == "true" && s != "":
			s = "****"
		case strings.Contains(s, "://"):
			s = redactURLs(s)
		}
		out[name] = s
	}
}

// redactURLs masks the password of every comma-separated URL in s.
func redactURLs(s string) string {
	parts := strings.Split(s, ",")
	for i, p := range parts {
		if u, err := url.Parse(strings.TrimSpace(p)); err == nil {
			parts[i] = u.Redacted()
		} else {
			parts[i] = "****" // unparsable: may still hold a secret
		}
	}
	return strings.Join(parts, ",")
}
