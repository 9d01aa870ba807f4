package config

import (
	"errors"
	"net/url"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
)

// What a masked secret looks like in the log: a setting hidden whole, and
// a secret inside a value (url.URL.Redacted writes the latter too).
const (
	masked = "****"
	mask   = "xxxxx"
)

var errUnparsable = errors.New("config: value does not parse")

// redact returns s as the start-up log may show it. kind is the field's
// secret tag: "true" hides the value; "postgres" masks the secrets of a
// pgx connection string; "url" those of comma-separated URLs. Untagged
// values are masked whole when their setting is named for a credential,
// and URLs in them lose their secrets. Whatever way it went, a value that
// still shows a secret-named key with a value is masked whole: a form
// nothing here understood must not leak.
func redact(name, kind, s string) string {
	if s == "" {
		return s
	}
	switch kind {
	case "":
		switch {
		case secretName(name):
			return masked
		case strings.Contains(s, "://"):
			s = redactURLs(s)
		}
	case "postgres":
		s = redactPostgres(s)
	case "url":
		s = redactURLs(s)
	default: // "true", or a tag this package does not know
		return masked
	}
	if leaks(s) {
		return masked
	}
	return s
}

// secretName reports whether a setting's name says it holds a credential
// (SMTP_PASSWORD, WEBHOOK_SECRET, API_TOKEN, ENCRYPTION_KEY), by its last
// word: CACHE_KEY_PREFIX and OIDC_TOKEN_CACHE_SIZE are not secrets.
func secretName(name string) bool {
	words := strings.Split(strings.ToUpper(name), "_")
	switch words[len(words)-1] {
	case "PASSWORD", "PASSWD", "PASSPHRASE", "SECRET", "TOKEN", "KEY", "APIKEY", "CREDENTIALS":
		return true
	}
	return false
}

// secretKey reports whether a key inside a value (a URL query parameter,
// a key=value pair) holds a secret: pgx's password and sslpassword, and
// anything else named like a credential.
func secretKey(k string) bool {
	k = strings.ToLower(k)
	for _, w := range []string{"password", "passwd", "secret", "token"} {
		if strings.Contains(k, w) {
			return true
		}
	}
	return false
}

// shownSecret finds a secret-named key and its '=' where a key may begin:
// at the start, or after a space, '?', '&', ';' or ','.
var shownSecret = regexp.MustCompile(`(?i)(?:^|[\s?&;,])[a-z0-9_.%-]*(?:password|passwd|secret|token)[a-z0-9_.%-]*\s*=\s*`)

// leaks reports whether s shows a secret-named key followed by something
// other than the mask or nothing.
func leaks(s string) bool {
	for _, m := range shownSecret.FindAllStringIndex(s, -1) {
		rest := s[m[1]:]
		if rest != "" && rest[0] != '&' && !strings.HasPrefix(rest, mask) {
			return true
		}
	}
	return false
}

// redactURLs masks the password and the secret query parameters of every
// comma-separated URL in s; a URL that does not parse is masked whole.
func redactURLs(s string) string {
	parts := strings.Split(s, ",")
	for i, p := range parts {
		u, err := url.Parse(strings.TrimSpace(p))
		if err == nil {
			u.RawQuery, err = redactQuery(u.RawQuery, url.QueryUnescape)
		}
		if err != nil {
			parts[i] = masked // unparsable: may still hold a secret
			continue
		}
		parts[i] = u.Redacted()
	}
	return strings.Join(parts, ",")
}

// redactQuery masks the values of secret keys in a raw query, leaving the
// rest as written. unescape decodes a key as the query's reader would.
func redactQuery(raw string, unescape func(string) (string, error)) (string, error) {
	if raw == "" {
		return raw, nil
	}
	pairs := strings.Split(raw, "&")
	for i, pair := range pairs {
		rawKey, _, ok := strings.Cut(pair, "=")
		key, err := unescape(rawKey)
		if err != nil {
			return "", err
		}
		if ok && secretKey(key) {
			pairs[i] = rawKey + "=" + mask
		}
	}
	return strings.Join(pairs, "&"), nil
}

// redactPostgres masks the secrets of a connection string in either form
// pgx accepts: a postgres:// or postgresql:// URL (the userinfo password,
// password and sslpassword query parameters), or key=value pairs (the
// values of password and sslpassword, quoted or not). Everything else is
// left as written. A string pgx cannot parse is masked whole, and so is
// one in which the password pgx found would still show.
func redactPostgres(s string) string {
	cfg, err := pgxpool.ParseConfig(s)
	if err != nil {
		return masked
	}
	var out string
	if strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://") {
		out, err = redactPostgresURL(s)
	} else {
		out, err = redactKeywordValue(s)
	}
	if err != nil {
		return masked
	}
	if pw := cfg.ConnConfig.Password; pw != "" && strings.Contains(out, pw) {
		return masked
	}
	return out
}

// redactPostgresURL follows pgx's URL parser (pgconn/parse_url.go, after
// libpq): the userinfo ends at the first '@' if one comes before any '/';
// the host list ends at the first '/' or '?' outside IPv6 brackets; the
// query is '&'-separated pairs with exactly one '=' each.
func redactPostgresURL(s string) (string, error) {
	scheme := "postgres://"
	if strings.HasPrefix(s, "postgresql://") {
		scheme = "postgresql://"
	}
	p := s[len(scheme):]
	var b strings.Builder
	b.WriteString(scheme)
	if i := strings.IndexAny(p, "@/"); i >= 0 && p[i] == '@' {
		user, password, ok := strings.Cut(p[:i], ":")
		b.WriteString(user)
		if ok {
			b.WriteByte(':')
			if password != "" {
				b.WriteString(mask)
			}
		}
		b.WriteByte('@')
		p = p[i+1:]
	}
	end := 0 // of the host list
	for {
		if end < len(p) && p[end] == '[' {
			close := strings.IndexByte(p[end:], ']')
			if close < 0 {
				return "", errUnparsable
			}
			end += close + 1
		}
		for end < len(p) && !strings.ContainsRune("/?,", rune(p[end])) {
			end++
		}
		if end < len(p) && p[end] == ',' {
			end++
			continue
		}
		break
	}
	qi := strings.IndexByte(p[end:], '?')
	if qi < 0 {
		b.WriteString(p)
		return b.String(), nil
	}
	qi += end
	b.WriteString(p[:qi+1])
	// Pairs pgx refuses (no '=', two) never got here: ParseConfig failed.
	q, err := redactQuery(p[qi+1:], func(k string) (string, error) {
		return url.PathUnescape(strings.Trim(k, " "))
	})
	if err != nil {
		return "", err
	}
	b.WriteString(q)
	return b.String(), nil
}

// redactKeywordValue follows pgx's key=value parser (libpq's conninfo):
// a key is what comes before the next '=', spaces around it ignored; a
// value is a run of non-spaces or a single-quoted string, a backslash
// escaping the next character in either.
func redactKeywordValue(s string) (string, error) {
	var b strings.Builder
	i, copied := skipSpace(s, 0), 0
	for i < len(s) {
		eq := strings.IndexByte(s[i:], '=')
		if eq < 0 {
			return "", errUnparsable
		}
		key := strings.Trim(s[i:i+eq], " \t\n\r\v\f")
		i = skipSpace(s, i+eq+1)
		start := i
		switch {
		case i == len(s):
		case s[i] != '\'':
			for i < len(s) && !isSpace(s[i]) {
				if s[i] == '\\' {
					i++
				}
				i++
			}
			i = min(i, len(s)) // a trailing backslash ends the string
		default:
			for i++; ; i++ {
				if i >= len(s) {
					return "", errUnparsable
				}
				if s[i] == '\\' {
					i++
					continue
				}
				if s[i] == '\'' {
					break
				}
			}
			i++ // the closing quote
		}
		if secretKey(key) && i > start {
			b.WriteString(s[copied:start])
			b.WriteString(mask)
			copied = i
		}
		i = skipSpace(s, i)
	}
	b.WriteString(s[copied:])
	return b.String(), nil
}

func isSpace(c byte) bool { return strings.IndexByte(" \t\n\r\v\f", c) >= 0 }

func skipSpace(s string, i int) int {
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	return i
}
