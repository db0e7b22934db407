// Package config loads and validates svcwatch's YAML configuration. Secrets
// are only ever read from environment variables or files (*_env / *_file).
package config

import "time"

// Config is the whole svcwatch configuration file.
type Config struct {
	State     State     `yaml:"state"`
	Directory Directory `yaml:"directory"`
	WinRM     WinRM     `yaml:"winrm"`
	Poll      Poll      `yaml:"poll"`
	Slack     Slack     `yaml:"slack"`
	Allow     []Allow   `yaml:"allow"`
	// DefaultAllow turns the built-in allowlist of known benign noise on or off.
	DefaultAllow *bool   `yaml:"default_allow"`
	Metrics      Metrics `yaml:"metrics"`
	Log          Log     `yaml:"log"`
}

// State is where svcwatch keeps host state, findings and the outbox.
type State struct {
	Path string `yaml:"path"`
	// Retention is how long findings are kept once delivered (or
	// suppressed), and a departed host's state once it left the monitored
	// set. 0 keeps everything.
	Retention time.Duration `yaml:"retention"`
}

// Directory configures LDAP discovery.
type Directory struct {
	URLs               []string      `yaml:"urls"`
	Domain             string        `yaml:"domain"`
	StartTLS           *bool         `yaml:"start_tls"`
	CAFile             string        `yaml:"ca_file"`
	TLSServerName      string        `yaml:"tls_server_name"`
	InsecureSkipVerify bool          `yaml:"insecure_skip_verify"`
	AllowInsecure      bool          `yaml:"allow_insecure"`
	BaseDN             string        `yaml:"base_dn"`
	Bind               Bind          `yaml:"bind"`
	Interval           time.Duration `yaml:"interval"`
	PageSize           int           `yaml:"page_size"`
	Timeout            time.Duration `yaml:"timeout"`
	Targets            Targets       `yaml:"targets"`
	Tier0Groups        []string      `yaml:"tier0_groups"`
	SIDCacheTTL        time.Duration `yaml:"sid_cache_ttl"`
}

// Bind is how svcwatch authenticates to LDAP.
type Bind struct {
	Method       string `yaml:"method"` // simple | ntlm | kerberos
	Username     string `yaml:"username"`
	PasswordEnv  string `yaml:"password_env"`
	PasswordFile string `yaml:"password_file"`
	Realm        string `yaml:"realm"`
	KRB5Conf     string `yaml:"krb5_conf"`
	KeytabFile   string `yaml:"keytab_file"`
}

// Targets selects the monitored hosts.
type Targets struct {
	DomainControllers *bool    `yaml:"domain_controllers"`
	Groups            []string `yaml:"groups"`
	OUs               []string `yaml:"ous"`
	Filters           []string `yaml:"filters"`
	Hosts             []string `yaml:"hosts"`
	Exclude           []string `yaml:"exclude"`
}

// WinRM configures how hosts are polled.
type WinRM struct {
	Scheme             string `yaml:"scheme"` // https | http
	Port               int    `yaml:"port"`
	Auth               string `yaml:"auth"` // ntlm | kerberos | certificate | basic
	Username           string `yaml:"username"`
	PasswordEnv        string `yaml:"password_env"`
	PasswordFile       string `yaml:"password_file"`
	CAFile             string `yaml:"ca_file"`
	TLSServerName      string `yaml:"tls_server_name"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
	CertFile           string `yaml:"cert_file"`
	KeyFile            string `yaml:"key_file"`
	Realm              string `yaml:"realm"`
	KRB5Conf           string `yaml:"krb5_conf"`
	KeytabFile         string `yaml:"keytab_file"`
	// ConnectTo, when set, is the host:port every WinRM connection dials
	// (the HTTP Host header, SPN and TLS name stay the target's name): for
	// tunnels, jump hosts and the lab.
	ConnectTo      string        `yaml:"connect_to"`
	Timeout        time.Duration `yaml:"timeout"`
	Concurrency    int           `yaml:"concurrency"`
	MaxOutputBytes int           `yaml:"max_output_bytes"`
	MaxEvents      int           `yaml:"max_events"`
	AllowInsecure  bool          `yaml:"allow_insecure"`
	// Session is how the collector runs: "shell" (the default) keeps one
	// shell per host and runs the whole script in it each poll (protocol
	// v1); "per-poll" opens a shell and sends the whole script every poll
	// (protocol v1);
	// "persistent" keeps one shell and one collector process per host
	// (protocol v2: a request line per poll).
	Session string `yaml:"session"`
	// KeepAlive is how long an authenticated connection to a host is kept
	// unused. When poll.interval + poll.jitter + 15s is under 2 minutes
	// (HTTP.sys closes idle connections at 120 s), the default keeps it
	// from one poll to the next, sparing a TLS handshake and an NTLM logon
	// (for member servers, a pass-through logon on a DC) per poll;
	// otherwise 30 s.
	KeepAlive time.Duration `yaml:"keep_alive"`
}

// Poll configures the polling schedule and failure handling.
type Poll struct {
	Interval         time.Duration `yaml:"interval"`
	Jitter           time.Duration `yaml:"jitter"`
	Lookback         time.Duration `yaml:"lookback"`
	UnreachableAfter int           `yaml:"unreachable_after"`
	MaxBackoff       time.Duration `yaml:"max_backoff"`
}

// Slack configures alert delivery.
type Slack struct {
	TokenEnv       string        `yaml:"token_env"`
	TokenFile      string        `yaml:"token_file"`
	WebhookURLEnv  string        `yaml:"webhook_url_env"`
	WebhookURLFile string        `yaml:"webhook_url_file"`
	Channel        string        `yaml:"channel"`
	APIURL         string        `yaml:"api_url"`
	MinSeverity    string        `yaml:"min_severity"`
	DigestOver     int           `yaml:"digest_over"`
	Routes         []Route       `yaml:"routes"`
	Timeout        time.Duration `yaml:"timeout"`
}

// Route sends findings at or above a severity to another channel.
type Route struct {
	MinSeverity string `yaml:"min_severity"`
	Channel     string `yaml:"channel"`
}

// Allow is one allowlist entry (an expected service).
type Allow struct {
	Name    string   `yaml:"name"`    // glob on service name or display name
	Path    string   `yaml:"path"`    // glob on the normalised image path, or /regex/
	Account string   `yaml:"account"` // glob on the service account
	Kinds   []string `yaml:"kinds"`   // finding kinds it applies to (default: service kinds)
	Hosts   []string `yaml:"hosts"`   // scope: host name globs
	Groups  []string `yaml:"groups"`  // scope: host reasons (group/OU names, "dc")
	Reason  string   `yaml:"reason"`
	Owner   string   `yaml:"owner"`
	Expires string   `yaml:"expires"` // YYYY-MM-DD; after it the entry stops suppressing
}

// Metrics configures the Prometheus / health endpoint.
type Metrics struct {
	Listen string `yaml:"listen"`
}

// Log configures structured logging.
type Log struct {
	Level  string `yaml:"level"`  // debug | info | warn | error
	Format string `yaml:"format"` // text | json
}
