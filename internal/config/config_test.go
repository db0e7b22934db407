package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

const examplePath = "../../config/svcwatch.example.yaml"

// Every bad file and the exact error it must produce: the error text is part of
// the interface (operators read it), so a change to it is a change to this table.
func TestLoadBad(t *testing.T) {
	tests := []struct {
		file string
		want string
	}{
		{"bad-auth-typo.yaml", `config: testdata/bad-auth-typo.yaml:7: winrm.auth: "kerbros" is not one of ntlm, kerberos, certificate, basic; fix the spelling`},
		{"bad-keep-alive.yaml", `config: testdata/bad-keep-alive.yaml:9: winrm.keep_alive: 20m0s is out of range; use 1s to 10m (longer than about 115s outlives the host's own idle timeout)`},
		{"bad-retention.yaml", `config: testdata/bad-retention.yaml:2: state.retention: 12h0m0s is too short; findings are the record of what happened, keep them at least 24h (e.g. 2160h for 90 days), or 0 to keep everything`},
		{"bad-retention-lookback.yaml", `config: testdata/bad-retention-lookback.yaml:2: state.retention: 720h0m0s is shorter than poll.lookback (2160h0m0s); raise it to at least the lookback, or old events could alert again`},
		{"bad-session.yaml", `config: testdata/bad-session.yaml:9: winrm.session: "keep" is not one of shell, per-poll, persistent; fix the spelling`},
		{"bad-password-inline.yaml", `config: testdata/bad-password-inline.yaml:8: winrm.password: secrets are not accepted in the config file; put the value in an environment variable and name it with password_env, or in a file readable only by svcwatch and give its path with password_file`},
		{"bad-unknown-key.yaml", `config: testdata/bad-unknown-key.yaml:12: pol: unknown key; did you mean poll?`},
		{"bad-key-typo.yaml", `config: testdata/bad-key-typo.yaml:13: poll.intervall: unknown key; did you mean interval?`},
		{"bad-unknown-far.yaml", `config: testdata/bad-unknown-far.yaml:5: log.colour_scheme: unknown key; the keys allowed here are format, level`},
		{"bad-duration-unitless.yaml", `config: testdata/bad-duration-unitless.yaml:13: poll.interval: "300" is not a duration; write a number with a unit, e.g. 90s, 5m, 1h30m`},
		{"bad-duration-negative.yaml", `config: testdata/bad-duration-negative.yaml:13: poll.interval: must be a positive duration, got -5m0s; write e.g. 30s, 5m or 1h`},
		{"bad-jitter-too-long.yaml", `config: testdata/bad-jitter-too-long.yaml:14: poll.jitter: 2m0s is not shorter than poll.interval (1m0s); lower the jitter`},
		{"bad-both-secret.yaml", `config: testdata/bad-both-secret.yaml:8: winrm.password_env: both password_env and password_file are set; keep one`},
		{"bad-env-not-a-name.yaml", `config: testdata/bad-env-not-a-name.yaml:8: winrm.password_env: is not an environment variable name (letters, digits and _ only); put the password in an environment variable and write its name here, never the password itself`},
		{"bad-basic-http.yaml", `config: testdata/bad-basic-http.yaml:8: winrm.auth: basic over http sends the password in clear text; use scheme: https (port 5986), or auth: ntlm or kerberos (which encrypt the messages), or set winrm.allow_insecure: true if you accept that`},
		{"bad-no-directory.yaml", `config: testdata/bad-no-directory.yaml: directory: neither urls nor domain is set; set directory.urls (e.g. [ldaps://dc01.corp.example]) or directory.domain (e.g. corp.example) for LDAP discovery, or list the hosts to poll in directory.targets.hosts`},
		{"bad-static-needs-ldap.yaml", "config: testdata/bad-static-needs-ldap.yaml:4: directory.targets.domain_controllers: finding domain controllers needs LDAP; set directory.urls or directory.domain, or set domain_controllers: false and list hosts\n" +
			"config: testdata/bad-static-needs-ldap.yaml:5: directory.targets.groups: needs LDAP; set directory.urls or directory.domain, or remove it"},
		{"bad-no-slack.yaml", `config: testdata/bad-no-slack.yaml: slack: no destination; set slack.token_env (a bot token, with slack.channel) or slack.webhook_url_env (an incoming webhook URL)`},
		{"bad-slack-no-channel.yaml", `config: testdata/bad-slack-no-channel.yaml:9: slack.channel: a bot token needs a channel to post to; set channel, e.g. "#soc-alerts" or a channel ID like C0123456789`},
		{"bad-slack-both.yaml", `config: testdata/bad-slack-both.yaml:12: slack.webhook_url_env: a bot token and a webhook are both set; keep one (a token can route by severity, a webhook cannot)`},
		{"bad-slack-severity.yaml", "config: testdata/bad-slack-severity.yaml:12: slack.min_severity: \"severe\" is not one of info, low, medium, high, critical; fix the spelling\n" +
			"config: testdata/bad-slack-severity.yaml:14: slack.routes[0].min_severity: \"hihg\" is not one of info, low, medium, high, critical; fix the spelling"},
		{"bad-slack-api-http.yaml", `config: testdata/bad-slack-api-http.yaml:12: slack.api_url: "http://slack-proxy.corp.example/api/" is plain http to another machine: the bot token would cross the network in clear; use https (plain http is accepted on loopback only, for a local test server)`},
		{"bad-webhook-routes.yaml", `config: testdata/bad-webhook-routes.yaml:12: slack.routes[0]: routes post to other channels, which only a bot token can do; use slack.token_env or slack.token_file instead of a webhook, or remove routes`},
		{"bad-allow-expires.yaml", `config: testdata/bad-allow-expires.yaml:15: allow[0].expires: "30/06/2027" is not a date; write YYYY-MM-DD, e.g. 2027-06-30`},
		{"bad-allow-regex.yaml", "config: testdata/bad-allow-regex.yaml:13: allow[0].path: /c:\\\\(unclosed/ does not compile as a regular expression (error parsing regexp: missing closing ): `c:\\\\(unclosed`); fix it, or write a glob without the surrounding slashes"},
		{"bad-allow-empty.yaml", `config: testdata/bad-allow-empty.yaml:13: allow[0]: matches every service; set at least one of name, path or account (or kinds of host findings with hosts or groups)`},
		{"bad-allow-hostkind.yaml", `config: testdata/bad-allow-hostkind.yaml:13: allow[0]: matches every service; set at least one of name, path or account (or kinds of host findings with hosts or groups)`},
		{"bad-allow-kind.yaml", "config: testdata/bad-allow-kind.yaml:13: allow[0].reason: is empty; say why this service is expected, so the next responder can judge the exception\n" +
			"config: testdata/bad-allow-kind.yaml:14: allow[0].kinds[1]: \"instaled\" is not one of installed, ephemeral, silent, modified, removed, tamper, unreachable, recovered, scope; fix the spelling"},
		{"bad-concurrency-zero.yaml", `config: testdata/bad-concurrency-zero.yaml:9: winrm.concurrency: 0 is out of range; use a value from 1 to 4096`},
		{"bad-metrics-listen.yaml", `config: testdata/bad-metrics-listen.yaml:13: metrics.listen: "9713" is not host:port; write e.g. 127.0.0.1:9713`},
		{"bad-ldap-plain.yaml", `config: testdata/bad-ldap-plain.yaml:3: directory.start_tls: is false, so ldap:// would send the bind credentials unprotected; set start_tls: true, use ldaps:// URLs, or set directory.allow_insecure: true if you accept that`},
		{"bad-ldaps-starttls.yaml", `config: testdata/bad-ldaps-starttls.yaml:3: directory.start_tls: is true but ldaps://dc01.corp.example is already TLS (ldaps://); remove start_tls or use ldap:// URLs`},
		{"bad-ldap-url.yaml", `config: testdata/bad-ldap-url.yaml:2: directory.urls[0]: "https://dc01.corp.example" is not an ldap:// or ldaps:// URL of a server; write e.g. ldaps://dc01.corp.example:636`},
		{"bad-ldap-filter.yaml", `config: testdata/bad-ldap-filter.yaml:7: directory.targets.filters[0]: "(description=tier0*" is not a valid LDAP filter (ldap: unexpected end of filter); write e.g. (description=tier0*)`},
		{"bad-exclude.yaml", "config: testdata/bad-exclude.yaml:7: directory.targets.exclude[1]: \"(operatingSystem=*Windows 7*\" is not a valid LDAP filter (ldap: unexpected end of filter); write a host name, a DN, or a filter like (operatingSystem=*Windows 7*)\n" +
			"config: testdata/bad-exclude.yaml:8: directory.targets.exclude[2]: \"CN=LAB02,,DC=corp\" is neither a host name nor a valid DN; write e.g. CN=LAB01,OU=Lab,DC=corp,DC=example"},
		{"bad-duplicate-key.yaml", `config: testdata/bad-duplicate-key.yaml:14: log.level: key given twice (first on line 13); keep one`},
		{"bad-not-bool.yaml", `config: testdata/bad-not-bool.yaml:6: directory.start_tls: "yes" is not true or false`},
		{"bad-not-int.yaml", `config: testdata/bad-not-int.yaml:6: directory.page_size: "lots" is not a whole number; write digits only, e.g. 500`},
		{"bad-wrong-shape.yaml", `config: testdata/bad-wrong-shape.yaml:13: allow: expected a list, got a mapping; write it as [a, b] or as lines starting with '- '`},
		{"bad-syntax.yaml", `config: testdata/bad-syntax.yaml:6: did not find expected ',' or ']'; fix the YAML syntax`},
		{"bad-empty.yaml", `config: testdata/bad-empty.yaml: file is empty; start from config/svcwatch.example.yaml`},
		{"bad-two-documents.yaml", `config: testdata/bad-two-documents.yaml:12: more than one YAML document (a second '---'); keep the whole configuration in one document`},
		{"bad-merge-key.yaml", `config: testdata/bad-merge-key.yaml:10: winrm: merge keys (<<) are not supported; write the keys out`},
		{"bad-many.yaml", "config: testdata/bad-many.yaml:4: directory.bind.method: \"digest\" is not one of simple, ntlm, kerberos; fix the spelling\n" +
			"config: testdata/bad-many.yaml:5: winrm.cert_file: certificate auth needs both cert_file and key_file (PEM); set them\n" +
			"config: testdata/bad-many.yaml:7: winrm.scheme: certificate auth works only over https; set scheme: https\n" +
			"config: testdata/bad-many.yaml: slack: no destination; set slack.token_env (a bot token, with slack.channel) or slack.webhook_url_env (an incoming webhook URL)\n" +
			"config: testdata/bad-many.yaml:9: log.level: \"verbose\" is not one of debug, info, warn, error; fix the spelling"},
	}
	covered := map[string]bool{}
	for _, tt := range tests {
		covered[tt.file] = true
		t.Run(tt.file, func(t *testing.T) {
			cfg, err := Load(filepath.Join("testdata", tt.file))
			if err == nil {
				t.Fatalf("Load succeeded, want error\n%s\nconfig:\n%s", tt.want, cfg)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("error mismatch\n got: %s\nwant: %s", got, tt.want)
			}
			if cfg != nil {
				t.Errorf("Load returned a config with an error")
			}
		})
	}
	// Every bad-*.yaml file has a row, so none is silently untested.
	files, err := filepath.Glob("testdata/bad-*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if !covered[filepath.Base(f)] {
			t.Errorf("%s has no row in TestLoadBad", f)
		}
	}
}

// Each joined problem is an *Error carrying its key and line.
func TestErrorsAreStructured(t *testing.T) {
	_, err := Load("testdata/bad-many.yaml")
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) {
		t.Fatalf("error %T is not a joined error", err)
	}
	var keys []string
	for _, e := range joined.Unwrap() {
		var ce *Error
		if !errors.As(e, &ce) {
			t.Fatalf("%T is not *config.Error", e)
		}
		keys = append(keys, fmt.Sprintf("%s@%d", ce.Key, ce.Line))
	}
	want := []string{"directory.bind.method@4", "winrm.cert_file@5", "winrm.scheme@7", "slack@0", "log.level@9"}
	if !reflect.DeepEqual(keys, want) {
		t.Errorf("keys = %v, want %v", keys, want)
	}
}

// Aliases cannot expand a small file into a huge configuration.
func TestAliasExpansionBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("directory:\n  targets:\n    hosts: &h [")
	for i := 0; i < 1000; i++ {
		fmt.Fprintf(&b, "h%d.corp.example,", i)
	}
	b.WriteString("x.corp.example]\nallow:\n")
	for i := 0; i < 500; i++ {
		b.WriteString("  - {name: x, reason: y, hosts: *h}\n")
	}
	_, err := Parse([]byte(b.String()), "bomb.yaml")
	if err == nil || !strings.Contains(err.Error(), "expands to more than 200000 values") {
		t.Fatalf("err = %.300v, want the expansion bound", err)
	}
	if n := strings.Count(err.Error(), "expands to more than"); n != 1 {
		t.Errorf("bound reported %d times, want once", n)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load("testdata/does-not-exist.yaml")
	if err == nil || !strings.Contains(err.Error(), "does-not-exist.yaml") || !strings.Contains(err.Error(), "--config") {
		t.Fatalf("err = %v; want it to name the file and say how to fix it", err)
	}
}

// Every default, as the task and the example file document them.
func TestDefaults(t *testing.T) {
	cfg, err := Load("testdata/good-minimal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"state.path", cfg.State.Path, "svcwatch.db"},
		{"state.retention", cfg.State.Retention, 90 * 24 * time.Hour},
		{"directory.start_tls (ldaps)", *cfg.Directory.StartTLS, false},
		{"directory.interval", cfg.Directory.Interval, time.Hour},
		{"directory.page_size", cfg.Directory.PageSize, 500},
		{"directory.timeout", cfg.Directory.Timeout, 30 * time.Second},
		{"directory.targets.domain_controllers", *cfg.Directory.Targets.DomainControllers, true},
		{"directory.sid_cache_ttl", cfg.Directory.SIDCacheTTL, time.Hour},
		{"directory.bind.method", cfg.Directory.Bind.Method, "simple"},
		{"winrm.scheme", cfg.WinRM.Scheme, "https"},
		{"winrm.port", cfg.WinRM.Port, 5986},
		{"winrm.auth", cfg.WinRM.Auth, "ntlm"},
		{"winrm.timeout", cfg.WinRM.Timeout, 60 * time.Second},
		{"winrm.concurrency", cfg.WinRM.Concurrency, DefaultConcurrency()},
		{"winrm.max_output_bytes", cfg.WinRM.MaxOutputBytes, 8 << 20},
		{"winrm.max_events", cfg.WinRM.MaxEvents, 500},
		{"winrm.session", cfg.WinRM.Session, "shell"},
		{"winrm.keep_alive (5m interval)", cfg.WinRM.KeepAlive, 30 * time.Second},
		{"poll.interval", cfg.Poll.Interval, 5 * time.Minute},
		{"poll.jitter", cfg.Poll.Jitter, 30 * time.Second},
		{"poll.lookback", cfg.Poll.Lookback, 24 * time.Hour},
		{"poll.unreachable_after", cfg.Poll.UnreachableAfter, 3},
		{"poll.max_backoff", cfg.Poll.MaxBackoff, time.Hour},
		{"slack.min_severity", cfg.Slack.MinSeverity, "low"},
		{"slack.digest_over", cfg.Slack.DigestOver, 5},
		{"slack.timeout", cfg.Slack.Timeout, 10 * time.Second},
		{"default_allow", *cfg.DefaultAllow, true},
		{"metrics.listen", cfg.Metrics.Listen, ""},
		{"log.level", cfg.Log.Level, "info"},
		{"log.format", cfg.Log.Format, "text"},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if c := DefaultConcurrency(); c < MinDefaultConcurrency || c > MaxDefaultConcurrency {
		t.Errorf("DefaultConcurrency() = %d, want %d..%d: polls wait on the hosts, not on the cores", c, MinDefaultConcurrency, MaxDefaultConcurrency)
	}
}

func TestDefaultKeepAlive(t *testing.T) {
	for _, tt := range []struct {
		interval, jitter, want time.Duration
	}{
		{time.Minute, 30 * time.Second, 105 * time.Second}, // the next poll reuses the connection
		{time.Minute, 0, 75 * time.Second},
		{100 * time.Second, 0, 115 * time.Second}, // the longest that stays under HTTP.sys's 120 s
		{100 * time.Second, time.Second, ShortKeepAlive},
		{5 * time.Minute, 30 * time.Second, ShortKeepAlive}, // too far apart: do not hold thousands of idle sockets
		{0, 0, ShortKeepAlive},
	} {
		if got := DefaultKeepAlive(tt.interval, tt.jitter); got != tt.want {
			t.Errorf("DefaultKeepAlive(%s, %s) = %s, want %s", tt.interval, tt.jitter, got, tt.want)
		}
	}
}

func TestGoodFiles(t *testing.T) {
	t.Run("static hosts, http, explicit zeros", func(t *testing.T) {
		cfg, err := Load("testdata/good-static.yaml")
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Directory.Enabled() || *cfg.Directory.Targets.DomainControllers {
			t.Errorf("directory without urls/domain: Enabled=%v domain_controllers=%v, want false/false",
				cfg.Directory.Enabled(), *cfg.Directory.Targets.DomainControllers)
		}
		if cfg.WinRM.Port != 5985 {
			t.Errorf("http port = %d, want 5985", cfg.WinRM.Port)
		}
		if cfg.Poll.Jitter != 0 || cfg.Poll.Lookback != 0 {
			t.Errorf("explicit zero durations replaced by defaults: jitter=%s lookback=%s", cfg.Poll.Jitter, cfg.Poll.Lookback)
		}
		if want := []string{"srv01.corp.example", "192.0.2.10"}; !reflect.DeepEqual(cfg.Directory.Targets.Hosts, want) {
			t.Errorf("hosts = %v, want %v", cfg.Directory.Targets.Hosts, want)
		}
	})
	t.Run("kerberos, domain, normalised case", func(t *testing.T) {
		cfg, err := Load("testdata/good-kerberos.yaml")
		if err != nil {
			t.Fatal(err)
		}
		if !*cfg.Directory.StartTLS {
			t.Error("domain-only (SRV, port 389) must default to StartTLS")
		}
		if cfg.Directory.Bind.Method != "kerberos" || cfg.Log.Level != "debug" {
			t.Errorf("enum values not lower-cased: %q %q", cfg.Directory.Bind.Method, cfg.Log.Level)
		}
		if cfg.Directory.Bind.Realm != "CORP.EXAMPLE" || cfg.WinRM.Realm != "CORP.EXAMPLE" {
			t.Errorf("realm defaults = %q / %q, want CORP.EXAMPLE", cfg.Directory.Bind.Realm, cfg.WinRM.Realm)
		}
		if got := cfg.Allow[1].Kinds; !reflect.DeepEqual(got, []string{"tamper", "unreachable"}) {
			t.Errorf("allow kinds = %q, want lower-cased [tamper unreachable]", got)
		}
	})
}

// The example file documents every key and loads cleanly.
func TestExampleLoadsAndCoversEveryKey(t *testing.T) {
	cfg, err := Load(examplePath)
	if err != nil {
		t.Fatalf("example config does not load:\n%v", err)
	}
	if len(cfg.Allow) == 0 || len(cfg.Slack.Routes) == 0 {
		t.Fatal("example has no allow entry or no route: their keys go undocumented")
	}
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	present := map[string]bool{}
	collectKeys("", doc.Content[0], present)
	for _, key := range schemaKeys("", reflect.TypeOf(Config{})) {
		if !present[key] {
			t.Errorf("example config does not document %s", key)
		}
	}
}

// collectKeys records key paths in n, with list items written as [].
func collectKeys(path string, n *yaml.Node, out map[string]bool) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := join(path, n.Content[i].Value)
			out[k] = true
			collectKeys(k, n.Content[i+1], out)
		}
	case yaml.SequenceNode:
		for _, el := range n.Content {
			collectKeys(path+"[]", el, out)
		}
	}
}

// schemaKeys lists every key path of t, with list items written as [].
func schemaKeys(path string, t reflect.Type) []string {
	var keys []string
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		k := join(path, name)
		keys = append(keys, k)
		ft := t.Field(i).Type
		switch {
		case ft.Kind() == reflect.Struct:
			keys = append(keys, schemaKeys(k, ft)...)
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			keys = append(keys, schemaKeys(k+"[]", ft.Elem())...)
		}
	}
	sort.Strings(keys)
	return keys
}

// String renders YAML that loads back to the same Config.
func TestStringRoundTrip(t *testing.T) {
	for _, f := range []string{"testdata/good-minimal.yaml", "testdata/good-static.yaml", "testdata/good-kerberos.yaml", examplePath} {
		t.Run(filepath.Base(f), func(t *testing.T) {
			cfg, err := Load(f)
			if err != nil {
				t.Fatal(err)
			}
			again, err := Parse([]byte(cfg.String()), "rendered")
			if err != nil {
				t.Fatalf("rendered config does not load: %v\n%s", err, cfg)
			}
			if !reflect.DeepEqual(cfg, again) {
				t.Errorf("round trip differs:\n%s\nvs\n%s", cfg, again)
			}
		})
	}
}

// Load is pure: loading twice gives equal results and reads no secret.
func TestLoadIsRepeatable(t *testing.T) {
	t.Setenv("LDAP_PASSWORD", "") // would make ReadSecrets fail; Load must not care
	a, err := Load("testdata/good-minimal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	b, err := Load("testdata/good-minimal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Error("two loads of one file differ")
	}
}

// Neither a rendered config, nor Secrets printed any way, nor any error shows a secret.
func TestSecretsNeverShown(t *testing.T) {
	const (
		ldapPass  = "ldap-Pa55-7c1e"
		winrmPass = "winrm-Pa55-99aa"
		token     = "xoxb-1111-2222-secret"
	)
	t.Setenv("LDAP_PASSWORD", ldapPass)
	dir := t.TempDir()
	winrmFile := filepath.Join(dir, "winrm")
	if err := os.WriteFile(winrmFile, []byte(winrmPass+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SLACK_TOKEN", token)
	yml := fmt.Sprintf(`
directory:
  urls: [ldaps://dc01.corp.example]
  bind: {username: svc@corp.example, password_env: LDAP_PASSWORD}
winrm: {username: svc, password_file: %q}
slack: {token_env: SLACK_TOKEN, channel: "#soc"}
`, winrmFile)
	cfg, err := Parse([]byte(yml), "inline.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s, err := cfg.ReadSecrets()
	if err != nil {
		t.Fatal(err)
	}
	if s.LDAPPassword != ldapPass || s.WinRMPassword != winrmPass || s.SlackToken != token || s.SlackWebhookURL != "" {
		t.Fatalf("ReadSecrets read the wrong values: %#v", s) // GoString is redacted, so this cannot leak either
	}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("secrets", "s", s, "p", &s)
	slog.New(slog.NewTextHandler(&logged, nil)).Info("secrets", "s", s, "p", &s)
	asJSON, err := json.Marshal(map[string]any{"s": s, "p": &s})
	if err != nil {
		t.Fatal(err)
	}
	rendered := []string{cfg.String(), fmt.Sprint(cfg), fmt.Sprintf("%v|%+v|%#v|%s", s, s, s, s), logged.String(), string(asJSON)}
	for _, r := range rendered {
		for _, secret := range []string{ldapPass, winrmPass, token} {
			if strings.Contains(r, secret) {
				t.Errorf("secret shown in:\n%s", r)
			}
		}
	}
	if !strings.Contains(rendered[2], "SlackToken:set") || !strings.Contains(rendered[2], "SlackWebhookURL:unset") {
		t.Errorf("Secrets rendering should say which are set: %s", rendered[2])
	}

	// A secret pasted into *_env is neither echoed by Load nor by String.
	pasted := strings.Replace(yml, "password_env: LDAP_PASSWORD", "password_env: \"p@ss word!\"", 1)
	_, err = Parse([]byte(pasted), "inline.yaml")
	if err == nil || strings.Contains(err.Error(), "p@ss word!") {
		t.Errorf("Load error = %v; want an error that does not echo the value", err)
	}
	code := *cfg
	code.Directory.Bind.PasswordEnv = "p@ss word!"
	if out := code.String(); strings.Contains(out, "p@ss word!") || !strings.Contains(out, "password_env: REDACTED") {
		t.Errorf("String shows a pasted secret:\n%s", out)
	}
}

func TestReadSecret(t *testing.T) {
	const secret = "s3cr3t-value"
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	t.Setenv("SVCWATCH_TEST_SECRET", secret)
	t.Setenv("SVCWATCH_TEST_EMPTY", "")
	tests := []struct {
		name      string
		env, file string
		want      string
		wantErr   string // substring
	}{
		{name: "env", env: "SVCWATCH_TEST_SECRET", want: secret},
		{name: "env unset", env: "SVCWATCH_TEST_UNSET_VAR", wantErr: "environment variable SVCWATCH_TEST_UNSET_VAR is not set"},
		{name: "env empty", env: "SVCWATCH_TEST_EMPTY", wantErr: "environment variable SVCWATCH_TEST_EMPTY is empty"},
		{name: "file newline", file: write("nl", secret+"\n"), want: secret},
		{name: "file crlf", file: write("crlf", secret+"\r\n"), want: secret},
		{name: "file no newline", file: write("plain", secret), want: secret},
		{name: "file inner spaces kept", file: write("spaces", " a b \n"), want: " a b "},
		{name: "file empty", file: write("empty", "\n"), wantErr: "is empty; write the secret into it"},
		{name: "file missing", file: filepath.Join(dir, "missing"), wantErr: "missing: no such file or directory"},
		{name: "file too large", file: write("big", strings.Repeat("x", maxSecretBytes+1)), wantErr: "is larger than"},
		{name: "both", env: "SVCWATCH_TEST_SECRET", file: write("both", secret), wantErr: "configure one"},
		{name: "none", wantErr: "none configured"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadSecret(tt.env, tt.file)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error shows the secret: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestReadSecretsReportsEveryMissing(t *testing.T) {
	cfg, err := Load("testdata/good-minimal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"LDAP_PASSWORD", "WINRM_PASSWORD", "SLACK_TOKEN"} {
		t.Setenv(v, "")
		os.Unsetenv(v)
	}
	_, err = cfg.ReadSecrets()
	if err == nil {
		t.Fatal("ReadSecrets succeeded with no variables set")
	}
	for _, want := range []string{"directory.bind.password: ", "LDAP_PASSWORD", "winrm.password: ", "WINRM_PASSWORD", "slack.token: ", "SLACK_TOKEN"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
}

// A Config built in code (the lab) gets the same defaults and checks.
func TestValidateCodeBuilt(t *testing.T) {
	c := &Config{
		Directory: Directory{Targets: Targets{Hosts: []string{"dc01.lab.test"}}},
		WinRM:     WinRM{Scheme: "http", Username: "svc", PasswordEnv: "P", ConnectTo: "127.0.0.1:40000"},
		Slack:     Slack{TokenEnv: "T", Channel: "#lab", APIURL: "http://127.0.0.1:40001/api/"},
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.WinRM.Port != 5985 || c.Poll.Interval != DefaultPollInterval || c.State.Path != DefaultStatePath {
		t.Errorf("defaults not applied: port=%d interval=%s path=%q", c.WinRM.Port, c.Poll.Interval, c.State.Path)
	}
	c.WinRM.Auth = "basic"
	err := c.Validate()
	if err == nil || !strings.HasPrefix(err.Error(), "config: winrm.auth: basic over http") {
		t.Errorf("err = %v, want the basic-over-http error without file or line", err)
	}
	c.WinRM.AllowInsecure = true
	if err := c.Validate(); err != nil {
		t.Errorf("allow_insecure should permit basic over http: %v", err)
	}
	if w := c.Warnings(); len(w) != 1 || !strings.Contains(w[0], "clear text") {
		t.Errorf("Warnings = %q, want the clear-text warning", w)
	}
	// One TLS name for every host is for a lab behind connect_to only.
	c.WinRM.Auth, c.WinRM.Scheme, c.WinRM.AllowInsecure, c.WinRM.TLSServerName = "ntlm", "https", false, "dc01.lab.example"
	if w := c.Warnings(); len(w) != 0 {
		t.Errorf("tls_server_name with connect_to: Warnings = %q, want none", w)
	}
	c.WinRM.ConnectTo = ""
	if w := c.Warnings(); len(w) != 1 || !strings.Contains(w[0], "tls_server_name") {
		t.Errorf("tls_server_name without connect_to: Warnings = %q, want one naming it", w)
	}
	c.WinRM.TLSServerName, c.WinRM.KeepAlive = "", 5*time.Minute
	if w := c.Warnings(); len(w) != 1 || !strings.Contains(w[0], "keep_alive") {
		t.Errorf("keep_alive past HTTP.sys's idle timeout: Warnings = %q, want one naming it", w)
	}
	// An allow entry by name alone suppresses whatever an attacker names so.
	c.WinRM.KeepAlive = 30 * time.Second
	c.Allow = []Allow{
		{Name: "Zabbix*", Reason: "monitoring agent"},
		{Name: "Veeam*", Path: `c:\program files\veeam\*.exe`, Reason: "backup"},
		{Path: `c:\program files\acme\agent.exe`, Reason: "acme"},
		{Name: "Svc*", Account: "LocalSystem", Reason: "name and account, both the installer's choice"},
		{Account: `CORP\svc-backup`, Reason: "account alone"},
		{Name: "Acme*", Path: "*", Reason: "a path that matches anything"},
		{Hosts: []string{"lab*"}, Kinds: []string{"unreachable"}, Reason: "host findings only"},
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	w := c.Warnings()
	want := []string{`allow[0] matches services by name "Zabbix*" without a path`, `allow[3] matches services by name "Svc*"`,
		`allow[4] matches services by account "CORP\\svc-backup"`, `allow[5] matches services by name "Acme*"`}
	if len(w) != len(want) {
		t.Fatalf("allow entries without a real path: Warnings = %q, want %d", w, len(want))
	}
	for i := range want {
		if !strings.HasPrefix(w[i], want[i]) {
			t.Errorf("warning %d = %q, want it to start %q", i, w[i], want[i])
		}
	}
}

func TestEditDistance(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want int
	}{{"", "", 0}, {"abc", "", 3}, {"pol", "poll", 1}, {"kerbros", "kerberos", 1}, {"interval", "intervall", 1}, {"ab", "ba", 2}} {
		if got := editDistance(tt.a, tt.b); got != tt.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

// Parse never panics, and whatever it accepts renders to YAML it accepts again.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yaml")
	files = append(files, examplePath)
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("a: &x [*x]"))
	f.Add([]byte("allow: &a [{name: x, reason: y}]\nlog: *a"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data, "fuzz.yaml")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "config: fuzz.yaml") {
				t.Fatalf("error without the file name: %v", err)
			}
			return
		}
		if _, err := Parse([]byte(cfg.String()), "again.yaml"); err != nil {
			t.Fatalf("accepted config renders to one that fails: %v\n%s", err, cfg)
		}
	})
}
