// Package directory finds the hosts svcwatch monitors in Active Directory
// (domain controllers, members of sensitive groups, OUs, raw filters, static
// names) and resolves the SIDs found in events to accounts. It speaks LDAP
// through go-ldap; every request carries a timeout and searches are paged.
package directory

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/go-ldap/ldap/v3/gssapi"

	"github.com/svcwatch/svcwatch/internal/config"
)

// Defaults applied when the configuration leaves a value at zero.
const (
	DefaultTimeout     = 15 * time.Second
	DefaultPageSize    = 500
	DefaultSIDCacheTTL = time.Hour
)

// SRVResolver looks up DNS SRV records; *net.Resolver satisfies it.
type SRVResolver interface {
	LookupSRV(ctx context.Context, service, proto, name string) (string, []*net.SRV, error)
}

// Option adjusts a Directory (mainly for tests).
type Option func(*Directory)

// WithResolver replaces the DNS resolver used for directory.domain SRV lookups.
func WithResolver(r SRVResolver) Option { return func(d *Directory) { d.resolver = r } }

// WithClock replaces time.Now (SID cache expiry).
func WithClock(now func() time.Time) Option { return func(d *Directory) { d.now = now } }

// Directory talks to AD. It is safe for concurrent use; each operation opens
// its own connection.
type Directory struct {
	cfg      config.Directory
	password string
	log      *slog.Logger
	resolver SRVResolver
	now      func() time.Time
	rootCAs  *x509.CertPool
	excludes []exclusion

	plainOnce sync.Once

	mu      sync.Mutex
	cache   map[string]cachedAccount
	netbios string // domain NetBIOS name, learnt once
}

// New validates cfg and returns a Directory. password is the bind secret
// (already read from password_env / password_file by the caller); it is
// never logged. Nothing is contacted until Discover or ResolveSID.
func New(cfg config.Directory, password string, logger *slog.Logger, opts ...Option) (*Directory, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.PageSize <= 0 {
		cfg.PageSize = DefaultPageSize
	}
	if cfg.SIDCacheTTL <= 0 {
		cfg.SIDCacheTTL = DefaultSIDCacheTTL
	}
	if cfg.Bind.Method == "" {
		cfg.Bind.Method = "simple"
	}
	d := &Directory{cfg: cfg, password: password, log: logger, resolver: net.DefaultResolver,
		now: time.Now, cache: map[string]cachedAccount{}}
	for _, o := range opts {
		o(d)
	}
	if !d.cfg.Enabled() {
		// No LDAP: static hosts only; SIDs beyond the well-known stay unresolved.
		if err := d.parseTargets(); err != nil {
			return nil, err
		}
		return d, nil
	}
	anyPlain := len(cfg.URLs) == 0 && cfg.AllowInsecure // SRV: ldap:// on the SRV port
	for _, u := range cfg.URLs {
		pu, err := url.Parse(u)
		if err != nil || (pu.Scheme != "ldap" && pu.Scheme != "ldaps") || pu.Host == "" {
			return nil, fmt.Errorf("directory: urls: %q is not an ldap:// or ldaps:// URL", u)
		}
		anyPlain = anyPlain || pu.Scheme == "ldap"
		if pu.Scheme == "ldap" && !d.startTLS() && !cfg.AllowInsecure {
			return nil, fmt.Errorf("directory: %s is plain LDAP and start_tls is false: credentials and results would cross the network unprotected; use ldaps://, set start_tls: true, or set allow_insecure: true to accept the risk", u)
		}
	}
	switch cfg.Bind.Method {
	case "simple", "ntlm":
		if cfg.Bind.Username == "" || password == "" {
			return nil, fmt.Errorf("directory: bind method %s needs bind.username and a password (bind.password_env or bind.password_file)", cfg.Bind.Method)
		}
	case "kerberos":
		if cfg.Bind.Username == "" || (password == "" && cfg.Bind.KeytabFile == "") {
			return nil, errors.New("directory: bind method kerberos needs bind.username and a password or bind.keytab_file")
		}
	default:
		return nil, fmt.Errorf("directory: bind.method %q is not one of simple, ntlm, kerberos", cfg.Bind.Method)
	}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("directory: ca_file: %w", err)
		}
		d.rootCAs = x509.NewCertPool()
		if !d.rootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("directory: ca_file %s holds no PEM certificate", cfg.CAFile)
		}
	}
	if err := d.parseTargets(); err != nil {
		return nil, err
	}
	if cfg.InsecureSkipVerify {
		logger.Warn("directory: insecure_skip_verify is set: the DC's TLS certificate is not checked and anyone on the path can impersonate it")
	}
	if cfg.AllowInsecure && anyPlain && !d.startTLS() {
		logger.Warn("directory: allow_insecure with start_tls false: binds and results to ldap:// URLs travel unprotected")
	}
	return d, nil
}

func (d *Directory) parseTargets() error {
	for _, f := range d.cfg.Targets.Filters {
		if _, err := ldap.CompileFilter(f); err != nil {
			return fmt.Errorf("directory: targets.filters: %q is not a valid LDAP filter: %w", f, err)
		}
	}
	for _, x := range d.cfg.Targets.Exclude {
		ex, err := parseExclusion(x)
		if err != nil {
			return err
		}
		d.excludes = append(d.excludes, ex)
	}
	return nil
}

func (d *Directory) startTLS() bool { return d.cfg.StartTLS == nil || *d.cfg.StartTLS }

// conn is one bound LDAP connection.
type conn struct {
	*ldap.Conn
	url  string
	host string
	stop func() bool
}

func (c *conn) close() {
	c.stop()
	c.Conn.Close()
}

// servers lists the URLs to try, in order.
func (d *Directory) servers(ctx context.Context) ([]string, error) {
	if len(d.cfg.URLs) > 0 {
		return d.cfg.URLs, nil
	}
	lctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	_, srvs, err := d.resolver.LookupSRV(lctx, "ldap", "tcp", "dc._msdcs."+d.cfg.Domain)
	if err != nil {
		return nil, fmt.Errorf("directory: DNS SRV lookup of _ldap._tcp.dc._msdcs.%s failed: %w: %w; check directory.domain and the DNS server, or list the DCs in directory.urls", d.cfg.Domain, ErrUnreachable, err)
	}
	if len(srvs) == 0 {
		return nil, fmt.Errorf("directory: %w: no SRV records for _ldap._tcp.dc._msdcs.%s; list the DCs in directory.urls", ErrUnreachable, d.cfg.Domain)
	}
	srvs = slices.Clone(srvs)
	// RFC 2782: lower priority first; among equals, heavier weight first.
	slices.SortStableFunc(srvs, func(a, b *net.SRV) int {
		if c := cmp.Compare(a.Priority, b.Priority); c != 0 {
			return c
		}
		return cmp.Compare(b.Weight, a.Weight)
	})
	var out []string
	for _, s := range srvs {
		host := strings.TrimSuffix(s.Target, ".")
		if host == "" {
			continue
		}
		scheme, port := "ldap", s.Port
		if !d.startTLS() && !d.cfg.AllowInsecure {
			scheme, port = "ldaps", 636
		}
		out = append(out, fmt.Sprintf("%s://%s", scheme, net.JoinHostPort(host, fmt.Sprint(port))))
	}
	return out, nil
}

// connect dials the servers in order and returns the first bound connection.
// A rejected password stops the failover at once (trying every DC with a
// wrong password only locks the account out faster).
func (d *Directory) connect(ctx context.Context) (*conn, error) {
	urls, err := d.servers(ctx)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, u := range urls {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		c, err := d.dial(ctx, u)
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
		if errors.Is(err, ErrCredentials) {
			break
		}
		d.log.Warn("directory: server failed, trying the next", "url", u, "err", err)
	}
	return nil, errors.Join(errs...)
}

// Errors Discover and ResolveSID wrap, for errors.Is: the CLI and the poller
// tell a setup problem (fix the config) from an outage (retry later).
var (
	ErrCredentials = errors.New("credentials rejected")  // wrong bind name/password/keytab, locked or disabled account
	ErrTLS         = errors.New("TLS failed")            // certificate not trusted, wrong name, handshake refused
	ErrUnreachable = errors.New("directory unreachable") // DNS, TCP connect, connection dropped
)

func (d *Directory) dial(ctx context.Context, raw string) (*conn, error) {
	pu, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", raw, err)
	}
	host := pu.Hostname()
	tlsCfg := &tls.Config{
		ServerName: cmp.Or(d.cfg.TLSServerName, host), RootCAs: d.rootCAs,
		InsecureSkipVerify: d.cfg.InsecureSkipVerify, MinVersion: tls.VersionTLS12, //nolint:gosec // operator's explicit choice, warned in New
	}
	dialer := &net.Dialer{Timeout: d.cfg.Timeout}
	lc, err := ldap.DialURL(raw, ldap.DialWithDialer(dialer), ldap.DialWithTLSConfig(tlsCfg))
	if err != nil {
		kind := ErrUnreachable
		if tlsHint(err) != "" {
			kind = ErrTLS
		}
		return nil, fmt.Errorf("%s: connect: %w: %w%s", raw, kind, err, tlsHint(err))
	}
	lc.SetTimeout(d.cfg.Timeout)
	c := &conn{Conn: lc, url: raw, host: host, stop: context.AfterFunc(ctx, func() { lc.Close() })}
	plain := pu.Scheme == "ldap"
	if plain && d.startTLS() {
		// go-ldap's StartTLS handshakes with no deadline, and discovery runs
		// on a context without one: a server that answers the StartTLS
		// request and then stalls would hang every later discovery.
		stalled := time.AfterFunc(d.cfg.Timeout, func() { lc.Close() })
		err := lc.StartTLS(tlsCfg)
		if !stalled.Stop() && err != nil {
			err = fmt.Errorf("%w (the TLS handshake did not finish within directory.timeout %s)", err, d.cfg.Timeout)
		}
		if err != nil {
			c.close()
			return nil, fmt.Errorf("%s: StartTLS: %w: %w%s", raw, ErrTLS, err, cmp.Or(tlsHint(err), " (check that the DC has a certificate for LDAP, or use ldaps://)"))
		}
		plain = false
	}
	if err := d.bind(c, plain); err != nil {
		c.close()
		return nil, fmt.Errorf("%s: %w", raw, err)
	}
	return c, nil
}

func tlsHint(err error) string {
	// go-ldap flattens the x509 errors into text, so match on it.
	msg := err.Error()
	switch {
	case strings.Contains(msg, "unknown authority"):
		return " (the DC's certificate is not signed by a CA we trust: set directory.ca_file to your AD CA's PEM)"
	case strings.Contains(msg, "certificate is valid for") || strings.Contains(msg, "doesn't contain any IP SANs"):
		return " (the certificate does not name this host: connect by the name on the certificate or set directory.tls_server_name)"
	case strings.Contains(msg, "expired") || strings.Contains(msg, "not yet valid"):
		return " (the certificate is expired or not yet valid: check the DC's LDAPS certificate and the clock)"
	case strings.Contains(msg, "tls:") || strings.Contains(msg, "x509:"):
		return " (TLS failed: check directory.ca_file and directory.tls_server_name)"
	}
	return ""
}

func (d *Directory) bind(c *conn, plain bool) error {
	b := d.cfg.Bind
	if plain {
		d.plainOnce.Do(func() {
			d.log.Warn("directory: binding over plain LDAP (allow_insecure): the session has no integrity protection", "url", c.url, "method", b.Method)
		})
	}
	var err error
	switch b.Method {
	case "simple":
		err = c.Bind(b.Username, d.password)
	case "ntlm":
		domain, _, _ := strings.Cut(b.Username, `\`)
		if !strings.Contains(b.Username, `\`) {
			domain = ""
		}
		err = c.NTLMBind(domain, b.Username, d.password)
	case "kerberos":
		err = d.kerberosBind(c)
	}
	if err == nil {
		return nil
	}
	if ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
		return fmt.Errorf("%s bind as %q: %w: %v; check bind.username (a DN, user@domain or DOMAIN\\user) and its password, and that the account is enabled and not locked out", b.Method, b.Username, ErrCredentials, err)
	}
	if ldap.IsErrorWithCode(err, ldap.LDAPResultStrongAuthRequired) {
		return fmt.Errorf("%s bind: %w; the DC requires LDAP signing or TLS: use ldaps:// or start_tls: true", b.Method, err)
	}
	if b.Method == "ntlm" && (ldap.IsErrorWithCode(err, ldap.ErrorNetwork) || strings.Contains(err.Error(), "EOF")) {
		return fmt.Errorf("ntlm bind as %q: %w; the server dropped the connection: it does not accept NTLM (sicily) binds (Samba DCs do not), use bind.method kerberos or simple", b.Username, err)
	}
	if b.Method == "kerberos" {
		return fmt.Errorf("kerberos bind as %q: %w; check bind.realm, bind.krb5_conf (KDC reachable, realm mapping), the password or keytab, the clock skew, and that the SPN ldap/%s exists", b.Username, err, c.spnHost(d))
	}
	return fmt.Errorf("%s bind as %q: %w", b.Method, b.Username, err)
}

func (c *conn) spnHost(d *Directory) string { return cmp.Or(d.cfg.TLSServerName, c.host) }

func (d *Directory) kerberosBind(c *conn) error {
	b := d.cfg.Bind
	user, realm := b.Username, b.Realm
	if u, r, ok := strings.Cut(user, "@"); ok {
		user = u
		realm = cmp.Or(realm, strings.ToUpper(r))
	}
	if _, u, ok := strings.Cut(user, `\`); ok {
		user = u
	}
	realm = cmp.Or(realm, strings.ToUpper(d.cfg.Domain))
	krb5 := cmp.Or(b.KRB5Conf, os.Getenv("KRB5_CONFIG"), "/etc/krb5.conf")
	var cl *gssapi.Client
	var err error
	if b.KeytabFile != "" {
		cl, err = gssapi.NewClientWithKeytab(user, realm, b.KeytabFile, krb5)
	} else {
		cl, err = gssapi.NewClientWithPassword(user, realm, d.password, krb5)
	}
	if err != nil {
		return fmt.Errorf("kerberos client: %w", err)
	}
	defer cl.Close()
	return c.GSSAPIBind(cl, "ldap/"+c.spnHost(d), "")
}

// baseDN is the configured base DN or the rootDSE's defaultNamingContext.
func (d *Directory) baseDN(c *conn) (string, error) {
	if d.cfg.BaseDN != "" {
		return d.cfg.BaseDN, nil
	}
	res, err := c.Search(ldap.NewSearchRequest("", ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, int(d.cfg.Timeout.Seconds()), false,
		"(objectClass=*)", []string{"defaultNamingContext"}, nil))
	if err != nil {
		return "", fmt.Errorf("%s: read rootDSE: %w; set directory.base_dn", c.url, err)
	}
	if len(res.Entries) == 0 || res.Entries[0].GetAttributeValue("defaultNamingContext") == "" {
		return "", fmt.Errorf("%s: rootDSE has no defaultNamingContext (not an AD DC?); set directory.base_dn", c.url)
	}
	return res.Entries[0].GetAttributeValue("defaultNamingContext"), nil
}

// search runs a paged subtree search.
func (d *Directory) search(c *conn, base, filter string, attrs []string) ([]*ldap.Entry, error) {
	req := ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, int(d.cfg.Timeout.Seconds()), false, filter, attrs, nil)
	res, err := c.SearchWithPaging(req, uint32(d.cfg.PageSize))
	if err != nil {
		return nil, err
	}
	return res.Entries, nil
}
