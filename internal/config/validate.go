package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/svcwatch/svcwatch/internal/inventory"
)

// Defaults. Each applies only when its key is absent from the file.
const (
	DefaultStatePath          = "svcwatch.db"
	DefaultRetention          = 90 * 24 * time.Hour
	minRetention              = 24 * time.Hour
	DefaultDirectoryInterval  = time.Hour
	DefaultPageSize           = 500
	DefaultDirectoryTimeout   = 30 * time.Second
	DefaultSIDCacheTTL        = time.Hour
	DefaultBindMethod         = "simple"
	DefaultWinRMScheme        = "https"
	DefaultHTTPSPort          = 5986
	DefaultHTTPPort           = 5985
	DefaultWinRMAuth          = "ntlm"
	DefaultWinRMSession       = "shell"
	DefaultWinRMTimeout       = 60 * time.Second
	ShortKeepAlive            = 30 * time.Second  // winrm.keep_alive when polls are too far apart to reuse a connection
	MaxReusableKeepAlive      = 115 * time.Second // under HTTP.sys's 120 s idle connection timeout
	maxKeepAlive              = 10 * time.Minute
	MaxDefaultConcurrency     = 64
	DefaultMaxOutputBytes     = 8 << 20
	DefaultMaxEvents          = 500
	DefaultPollInterval       = 5 * time.Minute
	DefaultPollJitter         = 30 * time.Second
	DefaultLookback           = 24 * time.Hour
	DefaultUnreachableAfter   = 3
	DefaultMaxBackoff         = time.Hour
	DefaultSlackMinSeverity   = "low"
	DefaultSlackDigestOver    = 5
	DefaultSlackTimeout       = 10 * time.Second
	DefaultLogLevel           = "info"
	DefaultLogFormat          = "text"
	maxLookback               = 365 * 24 * time.Hour // the collector protocol's bound on $B
	maxEventsBound            = 10000                // the collector protocol's bound on $N
	minMaxOutputBytes         = 64 << 10
	maxMaxOutputBytes         = 1 << 30
	maxConcurrency            = 4096
	maxPageSize               = 10000
	allowDateLayout           = "2006-01-02"
	slackRouteNeedsTokenFixup = "routes post to other channels, which only a bot token can do; use slack.token_env or slack.token_file instead of a webhook, or remove routes"
)

// DefaultKeepAlive is the winrm.keep_alive default for a poll interval and
// jitter: long enough to reuse a host's connection at its next poll when
// that fits under MaxReusableKeepAlive, else ShortKeepAlive.
func DefaultKeepAlive(interval, jitter time.Duration) time.Duration {
	if ka := interval + jitter + 15*time.Second; interval > 0 && ka <= MaxReusableKeepAlive {
		return ka
	}
	return ShortKeepAlive
}

// MinDefaultConcurrency is the winrm.concurrency default on small machines.
// A poll mostly waits on the host (PowerShell starts and reads the log and
// the registry: about a second on Windows) and costs the poller about a
// millisecond of CPU, so cores do not bound it: 32 polls at once cover
// 5,000 hosts in about 4 minutes at a second each.
const MinDefaultConcurrency = 32

// DefaultConcurrency is the winrm.concurrency default: MinDefaultConcurrency,
// or 2×GOMAXPROCS on a larger machine, at most MaxDefaultConcurrency.
func DefaultConcurrency() int {
	return min(max(MinDefaultConcurrency, 2*runtime.GOMAXPROCS(0)), MaxDefaultConcurrency)
}

var (
	bindMethods   = []string{"simple", "ntlm", "kerberos"}
	winrmSchemes  = []string{"https", "http"}
	winrmAuths    = []string{"ntlm", "kerberos", "certificate", "basic"}
	winrmSessions = []string{"shell", "per-poll", "persistent"}
	logLevels     = []string{"debug", "info", "warn", "error"}
	logFormats    = []string{"text", "json"}
	findingKinds  = allowableKinds()
	hostKinds     = []string{
		string(inventory.KindTamper), string(inventory.KindUnreachable), string(inventory.KindRecovered), string(inventory.KindScope),
	}
	envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	// hostNameRE is a DNS name or an IP literal; no spaces, schemes or paths.
	hostNameRE = regexp.MustCompile(`^[A-Za-z0-9_]([A-Za-z0-9_.:-]*[A-Za-z0-9_])?$`)
)

// allowableKinds are inventory.AllowableKinds as strings, for oneOf.
func allowableKinds() []string {
	var out []string
	for _, k := range inventory.AllowableKinds() {
		out = append(out, string(k))
	}
	return out
}

// validator applies defaults and checks a decoded Config. lines and set come
// from the decoder; both are empty for a Config built in code.
type validator struct {
	file  string
	lines map[string]int
	set   map[string]bool
	errs  []error
}

// Validate applies defaults to absent (zero) values and checks c, as Load does
// for a file. It is for configurations built in code (the lab); its errors
// carry no file or line.
func (c *Config) Validate() error {
	v := &validator{lines: map[string]int{}, set: map[string]bool{}}
	v.applyDefaults(c)
	v.validate(c)
	return errors.Join(v.errs...)
}

// line finds the line of key, or of its nearest enclosing key in the file.
func (v *validator) line(key string) int {
	for k := key; k != ""; {
		if l, ok := v.lines[k]; ok {
			return l
		}
		i := strings.LastIndexAny(k, ".[")
		if i < 0 {
			break
		}
		k = k[:i]
	}
	return 0
}

func (v *validator) errorf(key, format string, args ...any) {
	v.errs = append(v.errs, &Error{File: v.file, Line: v.line(key), Key: key, Msg: fmt.Sprintf(format, args...)})
}

// absent reports whether key was not written in the file (for code-built
// configs: always true, so zero values take their defaults).
func (v *validator) absent(key string) bool { return !v.set[key] }

func (v *validator) applyDefaults(c *Config) {
	str := func(key string, p *string, def string) {
		if *p == "" && v.absent(key) {
			*p = def
		}
		*p = strings.ToLower(*p)
	}
	dur := func(key string, p *time.Duration, def time.Duration) {
		if *p == 0 && v.absent(key) {
			*p = def
		}
	}
	num := func(key string, p *int, def int) {
		if *p == 0 && v.absent(key) {
			*p = def
		}
	}
	if c.State.Path == "" && v.absent("state.path") {
		c.State.Path = DefaultStatePath
	}
	dur("state.retention", &c.State.Retention, DefaultRetention)

	d := &c.Directory
	dur("directory.interval", &d.Interval, DefaultDirectoryInterval)
	num("directory.page_size", &d.PageSize, DefaultPageSize)
	dur("directory.timeout", &d.Timeout, DefaultDirectoryTimeout)
	dur("directory.sid_cache_ttl", &d.SIDCacheTTL, DefaultSIDCacheTTL)
	str("directory.bind.method", &d.Bind.Method, DefaultBindMethod)
	if d.StartTLS == nil {
		// StartTLS protects ldap:// (and SRV-discovered port 389); ldaps:// is TLS already.
		st := d.Domain != "" && len(d.URLs) == 0
		for _, u := range d.URLs {
			st = st || strings.HasPrefix(strings.ToLower(u), "ldap://")
		}
		d.StartTLS = &st
	}
	if d.Targets.DomainControllers == nil {
		// Without LDAP there is nothing to ask for DCs; static hosts only.
		dc := d.Enabled()
		d.Targets.DomainControllers = &dc
	}
	if d.Bind.Method == "kerberos" && d.Bind.Realm == "" && d.Domain != "" {
		d.Bind.Realm = strings.ToUpper(d.Domain)
	}

	w := &c.WinRM
	str("winrm.scheme", &w.Scheme, DefaultWinRMScheme)
	if w.Port == 0 && v.absent("winrm.port") {
		w.Port = DefaultHTTPSPort
		if w.Scheme == "http" {
			w.Port = DefaultHTTPPort
		}
	}
	str("winrm.auth", &w.Auth, DefaultWinRMAuth)
	dur("winrm.timeout", &w.Timeout, DefaultWinRMTimeout)
	num("winrm.concurrency", &w.Concurrency, DefaultConcurrency())
	num("winrm.max_output_bytes", &w.MaxOutputBytes, DefaultMaxOutputBytes)
	num("winrm.max_events", &w.MaxEvents, DefaultMaxEvents)
	str("winrm.session", &w.Session, DefaultWinRMSession)
	if w.Auth == "kerberos" && w.Realm == "" {
		w.Realm = d.Bind.Realm
		if w.Realm == "" && d.Domain != "" {
			w.Realm = strings.ToUpper(d.Domain)
		}
	}

	p := &c.Poll
	dur("poll.interval", &p.Interval, DefaultPollInterval)
	dur("poll.jitter", &p.Jitter, DefaultPollJitter)
	dur("poll.lookback", &p.Lookback, DefaultLookback)
	num("poll.unreachable_after", &p.UnreachableAfter, DefaultUnreachableAfter)
	dur("poll.max_backoff", &p.MaxBackoff, DefaultMaxBackoff)
	dur("winrm.keep_alive", &w.KeepAlive, DefaultKeepAlive(p.Interval, p.Jitter))

	s := &c.Slack
	str("slack.min_severity", &s.MinSeverity, DefaultSlackMinSeverity)
	num("slack.digest_over", &s.DigestOver, DefaultSlackDigestOver)
	dur("slack.timeout", &s.Timeout, DefaultSlackTimeout)
	for i := range s.Routes {
		s.Routes[i].MinSeverity = strings.ToLower(s.Routes[i].MinSeverity)
	}
	for i := range c.Allow {
		for j, k := range c.Allow[i].Kinds {
			c.Allow[i].Kinds[j] = strings.ToLower(strings.TrimSpace(k))
		}
	}

	if c.DefaultAllow == nil {
		t := true
		c.DefaultAllow = &t
	}
	str("log.level", &c.Log.Level, DefaultLogLevel)
	str("log.format", &c.Log.Format, DefaultLogFormat)
}

// Enabled reports whether LDAP discovery is configured (urls or domain). When
// it is not, svcwatch polls only directory.targets.hosts.
func (d Directory) Enabled() bool { return len(d.URLs) > 0 || d.Domain != "" }

func (v *validator) validate(c *Config) {
	if c.State.Path == "" {
		v.errorf("state.path", "is empty; give the path of the SQLite file svcwatch keeps its state in, e.g. /var/lib/svcwatch/svcwatch.db")
	}
	v.directory(&c.Directory)
	v.winrm(&c.WinRM)
	v.poll(&c.Poll)
	v.retention(c.State.Retention, c.Poll.Lookback)
	v.slack(&c.Slack)
	for i := range c.Allow {
		v.allow(fmt.Sprintf("allow[%d]", i), &c.Allow[i])
	}
	if c.Metrics.Listen != "" {
		v.hostPort("metrics.listen", c.Metrics.Listen, "127.0.0.1:9713")
	}
	v.oneOf("log.level", c.Log.Level, logLevels)
	v.oneOf("log.format", c.Log.Format, logFormats)
}

func (v *validator) oneOf(key, val string, allowed []string) bool {
	for _, a := range allowed {
		if val == a {
			return true
		}
	}
	v.errorf(key, "%q is not one of %s; fix the spelling", val, strings.Join(allowed, ", "))
	return false
}

func (v *validator) positive(key string, d time.Duration) {
	if d <= 0 {
		v.errorf(key, "must be a positive duration, got %s; write e.g. 30s, 5m or 1h", d)
	}
}

func (v *validator) between(key string, n, lo, hi int) {
	if n < lo || n > hi {
		v.errorf(key, "%d is out of range; use a value from %d to %d", n, lo, hi)
	}
}

// secret checks a *_env / *_file pair. required says whether one must be set.
// The value of *_env is never echoed: an operator may have pasted the secret itself.
func (v *validator) secret(prefix, what, envKey, env, fileKey, file string, required bool) {
	ek := join(prefix, envKey)
	switch {
	case env != "" && file != "":
		v.errorf(ek, "both %s and %s are set; keep one", envKey, fileKey)
	case env != "" && !envNameRE.MatchString(env):
		v.errorf(ek, "is not an environment variable name (letters, digits and _ only); put the %s in an environment variable and write its name here, never the %s itself", what, what)
	case env == "" && file == "" && required:
		v.errorf(ek, "no %s given; set %s to the name of an environment variable holding it, or %s to a file containing it", what, envKey, fileKey)
	}
}

func (v *validator) hostPort(key, val, example string) {
	host, port, err := net.SplitHostPort(val)
	if err == nil {
		var n int
		n, err = strconv.Atoi(port)
		if err == nil && (n < 0 || n > 65535) {
			err = errors.New("port out of range")
		}
	}
	if err != nil || strings.ContainsAny(host, " /") {
		v.errorf(key, "%q is not host:port; write e.g. %s", val, example)
	}
}

func (v *validator) directory(d *Directory) {
	const p = "directory"
	if !d.Enabled() {
		if len(d.Targets.Hosts) == 0 {
			v.errorf(p, "neither urls nor domain is set; set directory.urls (e.g. [ldaps://dc01.corp.example]) or directory.domain (e.g. corp.example) for LDAP discovery, or list the hosts to poll in directory.targets.hosts")
		}
		if *d.Targets.DomainControllers {
			v.errorf("directory.targets.domain_controllers", "finding domain controllers needs LDAP; set directory.urls or directory.domain, or set domain_controllers: false and list hosts")
		}
		for _, k := range []struct {
			key string
			n   int
		}{{"groups", len(d.Targets.Groups)}, {"ous", len(d.Targets.OUs)}, {"filters", len(d.Targets.Filters)}} {
			if k.n > 0 {
				v.errorf("directory.targets."+k.key, "needs LDAP; set directory.urls or directory.domain, or remove it")
			}
		}
	}
	anyPlain := d.Domain != "" && len(d.URLs) == 0
	for i, raw := range d.URLs {
		key := fmt.Sprintf("directory.urls[%d]", i)
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "ldap" && u.Scheme != "ldaps") || u.Hostname() == "" || (u.Path != "" && u.Path != "/") {
			v.errorf(key, "%q is not an ldap:// or ldaps:// URL of a server; write e.g. ldaps://dc01.corp.example:636", raw)
			continue
		}
		if u.Scheme == "ldap" {
			anyPlain = true
		} else if *d.StartTLS {
			v.errorf("directory.start_tls", "is true but %s is already TLS (ldaps://); remove start_tls or use ldap:// URLs", raw)
		}
	}
	if d.Domain != "" && !hostNameRE.MatchString(d.Domain) {
		v.errorf("directory.domain", "%q is not a DNS domain name; write e.g. corp.example", d.Domain)
	}
	if d.Enabled() && anyPlain && !*d.StartTLS && !d.AllowInsecure {
		v.errorf("directory.start_tls", "is false, so ldap:// would send the bind credentials unprotected; set start_tls: true, use ldaps:// URLs, or set directory.allow_insecure: true if you accept that")
	}
	if d.Enabled() {
		v.bind(&d.Bind)
	}
	v.positive("directory.interval", d.Interval)
	v.positive("directory.timeout", d.Timeout)
	v.positive("directory.sid_cache_ttl", d.SIDCacheTTL)
	v.between("directory.page_size", d.PageSize, 1, maxPageSize)
	if d.BaseDN != "" {
		if _, err := ldap.ParseDN(d.BaseDN); err != nil {
			v.errorf("directory.base_dn", "%q is not a distinguished name; write e.g. DC=corp,DC=example, or remove it to use the server's default naming context", d.BaseDN)
		}
	}
	for i, ou := range d.Targets.OUs {
		if _, err := ldap.ParseDN(ou); err != nil || ou == "" {
			v.errorf(fmt.Sprintf("directory.targets.ous[%d]", i), "%q is not a distinguished name; write e.g. OU=Tier0,DC=corp,DC=example", ou)
		}
	}
	for i, f := range d.Targets.Filters {
		if _, err := ldap.CompileFilter(f); err != nil {
			v.errorf(fmt.Sprintf("directory.targets.filters[%d]", i), "%q is not a valid LDAP filter (%v); write e.g. (description=tier0*)", f, ldapErr(err))
		}
	}
	for _, list := range []struct {
		key   string
		items []string
	}{{"groups", d.Targets.Groups}, {"hosts", d.Targets.Hosts}, {"exclude", d.Targets.Exclude}} {
		for i, s := range list.items {
			if strings.TrimSpace(s) == "" {
				v.errorf(fmt.Sprintf("directory.targets.%s[%d]", list.key, i), "is empty; remove the entry")
			}
		}
	}
	for i, x := range d.Targets.Exclude {
		key := fmt.Sprintf("directory.targets.exclude[%d]", i)
		x = strings.TrimSpace(x)
		switch {
		case strings.HasPrefix(x, "("):
			if _, err := ldap.CompileFilter(x); err != nil {
				v.errorf(key, "%q is not a valid LDAP filter (%v); write a host name, a DN, or a filter like (operatingSystem=*Windows 7*)", x, ldapErr(err))
			}
		case strings.Contains(x, "="):
			if _, err := ldap.ParseDN(x); err != nil {
				v.errorf(key, "%q is neither a host name nor a valid DN; write e.g. CN=LAB01,OU=Lab,DC=corp,DC=example", x)
			}
		}
	}
	for i, h := range d.Targets.Hosts {
		if strings.TrimSpace(h) != "" && !hostNameRE.MatchString(h) {
			v.errorf(fmt.Sprintf("directory.targets.hosts[%d]", i), "%q is not a host name; write the DNS name, e.g. srv01.corp.example", h)
		}
	}
}

func (v *validator) bind(b *Bind) {
	const p = "directory.bind"
	if !v.oneOf(p+".method", b.Method, bindMethods) {
		return
	}
	if b.Username == "" {
		v.errorf(p+".username", "is empty; set the account svcwatch binds as, e.g. svc-svcwatch@corp.example")
	}
	switch b.Method {
	case "simple", "ntlm":
		v.secret(p, "password", "password_env", b.PasswordEnv, "password_file", b.PasswordFile, true)
	case "kerberos":
		v.secret(p, "password", "password_env", b.PasswordEnv, "password_file", b.PasswordFile, b.KeytabFile == "")
		if b.Realm == "" {
			v.errorf(p+".realm", "kerberos needs a realm; set realm (e.g. CORP.EXAMPLE) or directory.domain")
		}
	}
}

func (v *validator) winrm(w *WinRM) {
	const p = "winrm"
	okScheme := v.oneOf(p+".scheme", w.Scheme, winrmSchemes)
	if !v.oneOf(p+".auth", w.Auth, winrmAuths) {
		w.Auth = ""
	}
	v.between(p+".port", w.Port, 1, 65535)
	switch w.Auth {
	case "ntlm", "basic":
		if w.Username == "" {
			v.errorf(p+".username", "is empty; set the account svcwatch polls as, e.g. CORP\\svc-svcwatch")
		}
		v.secret(p, "password", "password_env", w.PasswordEnv, "password_file", w.PasswordFile, true)
	case "kerberos":
		if w.Username == "" {
			v.errorf(p+".username", "is empty; set the account svcwatch polls as, e.g. svc-svcwatch")
		}
		v.secret(p, "password", "password_env", w.PasswordEnv, "password_file", w.PasswordFile, w.KeytabFile == "")
		if w.Realm == "" {
			v.errorf(p+".realm", "kerberos needs a realm; set realm (e.g. CORP.EXAMPLE) or directory.domain")
		}
	case "certificate":
		if w.CertFile == "" || w.KeyFile == "" {
			v.errorf(p+".cert_file", "certificate auth needs both cert_file and key_file (PEM); set them")
		}
		if okScheme && w.Scheme != "https" {
			v.errorf(p+".scheme", "certificate auth works only over https; set scheme: https")
		}
		v.secret(p, "password", "password_env", w.PasswordEnv, "password_file", w.PasswordFile, false)
	}
	if (w.CertFile == "") != (w.KeyFile == "") && w.Auth != "certificate" {
		v.errorf(p+".cert_file", "cert_file and key_file go together; set both or neither")
	}
	if w.Auth == "basic" && w.Scheme == "http" && !w.AllowInsecure {
		v.errorf(p+".auth", "basic over http sends the password in clear text; use scheme: https (port 5986), or auth: ntlm or kerberos (which encrypt the messages), or set winrm.allow_insecure: true if you accept that")
	}
	if w.ConnectTo != "" {
		v.hostPort(p+".connect_to", w.ConnectTo, "127.0.0.1:5986")
	}
	v.positive(p+".timeout", w.Timeout)
	v.between(p+".concurrency", w.Concurrency, 1, maxConcurrency)
	v.between(p+".max_output_bytes", w.MaxOutputBytes, minMaxOutputBytes, maxMaxOutputBytes)
	v.between(p+".max_events", w.MaxEvents, 1, maxEventsBound)
	v.oneOf(p+".session", w.Session, winrmSessions)
	if w.KeepAlive < time.Second || w.KeepAlive > maxKeepAlive {
		v.errorf(p+".keep_alive", "%s is out of range; use 1s to 10m (longer than about 115s outlives the host's own idle timeout)", w.KeepAlive)
	}
}

func (v *validator) poll(p *Poll) {
	v.positive("poll.interval", p.Interval)
	if p.Jitter < 0 {
		v.errorf("poll.jitter", "must not be negative, got %s; write e.g. 30s, or 0s for none", p.Jitter)
	} else if p.Interval > 0 && p.Jitter >= p.Interval {
		v.errorf("poll.jitter", "%s is not shorter than poll.interval (%s); lower the jitter", p.Jitter, p.Interval)
	}
	if p.Lookback < 0 || p.Lookback > maxLookback {
		v.errorf("poll.lookback", "%s is out of range; use 0s (no history on first poll) up to 8760h (one year)", p.Lookback)
	}
	if p.UnreachableAfter < 1 {
		v.errorf("poll.unreachable_after", "%d is out of range; it counts failed polls in a row, use 1 or more", p.UnreachableAfter)
	}
	v.positive("poll.max_backoff", p.MaxBackoff)
}

// retention: 0 keeps everything. Otherwise at least a day, and no shorter
// than poll.lookback: a pruned host that comes back reads that much event
// history again, and findings for it must still be stored to be recognised.
func (v *validator) retention(r, lookback time.Duration) {
	switch {
	case r == 0:
	case r < minRetention:
		v.errorf("state.retention", "%s is too short; findings are the record of what happened, keep them at least 24h (e.g. 2160h for 90 days), or 0 to keep everything", r)
	case r < lookback:
		v.errorf("state.retention", "%s is shorter than poll.lookback (%s); raise it to at least the lookback, or old events could alert again", r, lookback)
	}
}

func (v *validator) slack(s *Slack) {
	const p = "slack"
	v.secret(p, "Slack bot token", "token_env", s.TokenEnv, "token_file", s.TokenFile, false)
	v.secret(p, "Slack webhook URL", "webhook_url_env", s.WebhookURLEnv, "webhook_url_file", s.WebhookURLFile, false)
	token := s.TokenEnv != "" || s.TokenFile != ""
	webhook := s.WebhookURLEnv != "" || s.WebhookURLFile != ""
	switch {
	case token && webhook:
		v.errorf(p+".webhook_url_env", "a bot token and a webhook are both set; keep one (a token can route by severity, a webhook cannot)")
	case !token && !webhook:
		v.errorf(p, "no destination; set slack.token_env (a bot token, with slack.channel) or slack.webhook_url_env (an incoming webhook URL)")
	case token && s.Channel == "":
		v.errorf(p+".channel", "a bot token needs a channel to post to; set channel, e.g. \"#soc-alerts\" or a channel ID like C0123456789")
	}
	if s.APIURL != "" {
		u, err := url.Parse(s.APIURL)
		switch {
		case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "":
			v.errorf(p+".api_url", "%q is not an http(s) URL; remove it to use https://slack.com/api/", s.APIURL)
		case u.Scheme == "http" && !LoopbackHost(u.Hostname()):
			v.errorf(p+".api_url", "%q is plain http to another machine: the bot token would cross the network in clear; use https (plain http is accepted on loopback only, for a local test server)", s.APIURL)
		}
	}
	if _, err := inventory.ParseSeverity(s.MinSeverity); err != nil {
		v.errorf(p+".min_severity", "%q is not one of info, low, medium, high, critical; fix the spelling", s.MinSeverity)
	}
	if s.DigestOver < 1 {
		v.errorf(p+".digest_over", "%d is out of range; more than this many findings for one host in one poll are sent as one digest, use 1 or more", s.DigestOver)
	}
	v.positive(p+".timeout", s.Timeout)
	for i, r := range s.Routes {
		key := fmt.Sprintf("%s.routes[%d]", p, i)
		if _, err := inventory.ParseSeverity(r.MinSeverity); err != nil {
			v.errorf(key+".min_severity", "%q is not one of info, low, medium, high, critical; fix the spelling", r.MinSeverity)
		}
		if r.Channel == "" {
			v.errorf(key+".channel", "is empty; set the channel this route posts to")
		}
		if webhook && !token {
			v.errorf(key, slackRouteNeedsTokenFixup)
		}
	}
}

func (v *validator) allow(key string, a *Allow) {
	// Host-level kinds (tamper, unreachable, ...) may be allowed per host or group without a service match.
	hostOnly := len(a.Kinds) > 0
	for _, k := range a.Kinds {
		hostOnly = hostOnly && slices.Contains(hostKinds, k)
	}
	if a.Name == "" && a.Path == "" && a.Account == "" && !(hostOnly && len(a.Hosts)+len(a.Groups) > 0) {
		v.errorf(key, "matches every service; set at least one of name, path or account (or kinds of host findings with hosts or groups)")
	}
	if re, ok := regexLiteral(a.Path); ok {
		if _, err := regexp.Compile(re); err != nil {
			v.errorf(key+".path", "%s does not compile as a regular expression (%v); fix it, or write a glob without the surrounding slashes", a.Path, err)
		}
	}
	if a.Reason == "" {
		v.errorf(key+".reason", "is empty; say why this service is expected, so the next responder can judge the exception")
	}
	if a.Expires != "" {
		if _, err := time.Parse(allowDateLayout, a.Expires); err != nil {
			v.errorf(key+".expires", "%q is not a date; write YYYY-MM-DD, e.g. 2027-06-30", a.Expires)
		}
	}
	for i, k := range a.Kinds {
		v.oneOf(fmt.Sprintf("%s.kinds[%d]", key, i), k, findingKinds)
	}
}

// ldapErr drops go-ldap's result-code wrapping from a filter error.
func ldapErr(err error) error {
	var le *ldap.Error
	if errors.As(err, &le) && le.Err != nil {
		return le.Err
	}
	return err
}

// regexLiteral returns the body of a /regex/ path pattern.
func regexLiteral(s string) (string, bool) {
	if len(s) >= 2 && s[0] == '/' && s[len(s)-1] == '/' {
		return s[1 : len(s)-1], true
	}
	return "", false
}

// Warnings lists settings that are valid but weaken security, for the log at start.
func (c *Config) Warnings() []string {
	var w []string
	if c.Directory.InsecureSkipVerify {
		w = append(w, "directory.insecure_skip_verify is true: the LDAP server's certificate is not checked")
	}
	if c.Directory.AllowInsecure && c.Directory.StartTLS != nil && !*c.Directory.StartTLS {
		w = append(w, "directory.allow_insecure is true and start_tls is false: LDAP bind credentials may cross the network unprotected")
	}
	if c.WinRM.InsecureSkipVerify {
		w = append(w, "winrm.insecure_skip_verify is true: the hosts' certificates are not checked")
	}
	if c.WinRM.Auth == "basic" && c.WinRM.Scheme == "http" {
		w = append(w, "winrm uses basic auth over http: the password crosses the network in clear text")
	}
	if c.WinRM.KeepAlive > MaxReusableKeepAlive {
		w = append(w, fmt.Sprintf("winrm.keep_alive is %s: Windows (HTTP.sys) closes idle connections after 120 s, so keeping them longer only holds sockets open; 115s or less reuses them", c.WinRM.KeepAlive))
	}
	if c.WinRM.TLSServerName != "" && c.WinRM.ConnectTo == "" {
		w = append(w, fmt.Sprintf("winrm.tls_server_name is %q: every host's certificate is checked against that one name, not the host's own; it is meant for a lab behind connect_to", c.WinRM.TLSServerName))
	}
	for i, a := range c.Allow {
		if (a.Name == "" && a.Account == "") || strings.Trim(a.Path, "*?") != "" {
			continue
		}
		by := fmt.Sprintf("name %q", a.Name)
		if a.Name == "" {
			by = fmt.Sprintf("account %q", a.Account)
		}
		w = append(w, fmt.Sprintf("allow[%d] matches services by %s without a path: whoever installs a service chooses its name and account, so an attacker's service named or run like that would be suppressed; add path: with the expected binary", i, by))
	}
	return w
}

// LoopbackHost reports whether host (from a URL or host:port) names this
// machine's loopback: where plain http cannot leak a secret to the network.
func LoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
