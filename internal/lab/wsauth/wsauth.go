// Package wsauth is the server side of HTTP authentication for the lab's
// simulated WinRM endpoints: NTLM (NTLMv2 verification, session sealing per
// MS-WSMV 2.2.9.1.1), Basic, client certificates and Kerberos via SPNEGO.
//
// It is written independently of the client in internal/ntlm so that the two
// are checked against each other and against real Windows captures.
//
// Usage:
//
//	a := wsauth.New(wsauth.Options{Users: ..., Domain: "LAB", ...})
//	srv := &http.Server{Handler: a.Wrap(soap)}
//	a.Configure(srv) // per-connection NTLM contexts, HTTP/1.1 only
//
// The wrapped handler sees the plaintext SOAP request and writes a plaintext
// answer; wsauth unseals and seals around it. wsauth.User(r.Context()) names
// the authenticated user.
package wsauth

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/jcmturner/gokrb5/v8/keytab"
)

// Method names an authentication method, as reported by Method(ctx).
const (
	MethodNTLM        = "ntlm"
	MethodBasic       = "basic"
	MethodCertificate = "certificate"
	MethodKerberos    = "kerberos"
)

// CertificateAuthorization is the Authorization header value a WinRM client
// sends to ask for client-certificate authentication.
const CertificateAuthorization = "http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/https/mutual"

// Options configure an Auth. The zero value of every field is usable except
// Users, which must name at least one account for NTLM or Basic to succeed.
type Options struct {
	// Users maps an account to its password. Keys are matched
	// case-insensitively and may be "user", `DOMAIN\user` or "user@dns.domain".
	// User(ctx) reports the key as written here.
	Users map[string]string
	// Domain is the NetBIOS domain name (e.g. "LAB"), DNSDomain the DNS one
	// ("lab.example"), ServerName the NetBIOS computer name ("DC01").
	// DNSServerName defaults to lower(ServerName) + "." + DNSDomain.
	Domain, DNSDomain, ServerName, DNSServerName string

	// DisableNTLM turns off NTLM (Negotiate and NTLM schemes).
	DisableNTLM bool
	// Basic enables Basic authentication, over TLS only unless BasicOverHTTP.
	Basic, BasicOverHTTP bool
	// Certificates maps a client certificate's subject CN to a user; nil
	// disables certificate authentication. The chain must have been verified
	// by the TLS layer (tls.VerifyClientCertIfGiven), or against ClientCAs
	// when that is set.
	Certificates map[string]string
	ClientCAs    *x509.CertPool
	// Kerberos enables the Kerberos scheme and Kerberos inside Negotiate.
	Kerberos *KerberosOptions

	// ServerCertificate is the listener's TLS certificate. With it, NTLM
	// channel bindings (MsvAvChannelBindings over RFC 5929
	// tls-server-end-point) that a client sends over TLS are checked, like
	// Windows' CbtHardeningLevel=Relaxed; RequireChannelBinding refuses NTLM
	// over TLS without them (CbtHardeningLevel=Strict).
	ServerCertificate     *x509.Certificate
	RequireChannelBinding bool

	// RequireSealing is WinRM's AllowUnencrypted=false: on a connection
	// without TLS, a request whose body is not NTLM-sealed is answered 401 and
	// the connection's security context is dropped, as Windows does.
	RequireSealing bool
	// MaxBodyBytes bounds a request body (default 8 MiB).
	MaxBodyBytes int64
	// IdleTimeout evicts per-connection contexts not used for this long when
	// the server does not report closed connections through ConnState
	// (default 10 minutes).
	IdleTimeout time.Duration

	// Reject, when it returns true for a user, fails that user's logon as if
	// the password were wrong (a locked or disabled account). Authorization
	// (access denied after logon) belongs to the SOAP layer, not here.
	Reject func(user string) bool
	// OnAttempt observes each completed authentication attempt (tests use it
	// to count handshakes per connection).
	OnAttempt func(Attempt)

	// Now and Rand default to time.Now and crypto/rand.Reader.
	Now  func() time.Time
	Rand io.Reader
	// Logger receives failure details that are never sent to the client.
	Logger *slog.Logger
}

// KerberosOptions configure Kerberos acceptance.
type KerberosOptions struct {
	// Keytab holds the service keys (HTTP/<host>). Without one every
	// Kerberos token is answered 401 with an SPNEGO reject.
	Keytab *keytab.Keytab
	// ServicePrincipal, e.g. "HTTP/dc01.lab.example"; empty accepts any
	// principal in the keytab.
	ServicePrincipal string
	// MaxClockSkew defaults to 5 minutes.
	MaxClockSkew time.Duration
}

// Attempt describes one finished authentication attempt.
type Attempt struct {
	Method string
	User   string // empty when unknown
	OK     bool
	Remote string
	Err    error // why it failed; never sent to the client
}

// Auth authenticates HTTP requests for a WinRM endpoint.
type Auth struct {
	opts        Options
	dnsComputer string
	users       map[string]userEntry
	certUsers   map[string]string

	mu    sync.Mutex
	conns map[string]*connContext
}

type userEntry struct{ key, password string }

// New returns an Auth for opts; it does not start anything.
func New(opts Options) *Auth {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Rand == nil {
		opts.Rand = rand.Reader
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 8 << 20
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = 10 * time.Minute
	}
	a := &Auth{opts: opts, users: map[string]userEntry{}, certUsers: map[string]string{}, conns: map[string]*connContext{}}
	a.dnsComputer = opts.DNSServerName
	if a.dnsComputer == "" && opts.ServerName != "" && opts.DNSDomain != "" {
		a.dnsComputer = strings.ToLower(opts.ServerName) + "." + opts.DNSDomain
	}
	for k, p := range opts.Users {
		a.users[strings.ToLower(k)] = userEntry{key: k, password: p}
	}
	for cn, u := range opts.Certificates {
		a.certUsers[strings.ToLower(cn)] = u
	}
	return a
}

type ctxKey int

const (
	userKey ctxKey = iota
	methodKey
)

// User returns the authenticated user of a request handled under Wrap.
func User(ctx context.Context) string {
	s, _ := ctx.Value(userKey).(string)
	return s
}

// Method returns how the request's user authenticated (MethodNTLM, ...).
func Method(ctx context.Context) string {
	s, _ := ctx.Value(methodKey).(string)
	return s
}

// Configure installs the connection hooks on srv: contexts are dropped when
// their TCP connection closes, and HTTP/2 is disabled because NTLM
// authenticates a connection, which HTTP/2 multiplexes (Windows falls back to
// HTTP/1.1 for it too). Existing ConnState hooks are kept.
func (a *Auth) Configure(srv *http.Server) {
	prev := srv.ConnState
	srv.ConnState = func(c net.Conn, s http.ConnState) {
		a.ConnState(c, s)
		if prev != nil {
			prev(c, s)
		}
	}
	srv.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
}

// ConnState drops a connection's security context when it closes; use it
// as (or from) http.Server.ConnState when not calling Configure.
func (a *Auth) ConnState(c net.Conn, s http.ConnState) {
	if s != http.StateClosed && s != http.StateHijacked {
		return
	}
	a.mu.Lock()
	delete(a.conns, connKey(c.LocalAddr(), c.RemoteAddr()))
	a.mu.Unlock()
}

// connKey identifies a TCP connection by its local and remote addresses.
func connKey(local, remote net.Addr) string {
	l := ""
	if local != nil {
		l = local.String()
	}
	r := ""
	if remote != nil {
		r = remote.String()
	}
	return l + "|" + r
}

// connContext is the authentication state of one TCP connection. Requests on
// an HTTP/1.1 connection are sequential; mu guards against misuse anyway.
type connContext struct {
	mu       sync.Mutex
	key      string
	lastUsed time.Time

	user   string // authenticated user; "" before logon
	method string
	scheme string // the Authorization scheme the client used ("Negotiate", "NTLM", ...)
	spnego bool   // NTLM tokens wrapped in SPNEGO
	// mechTypes is the DER MechTypeList of the client's NegTokenInit and
	// clientMIC the mechListMIC of its final NegTokenResp, if any.
	mechTypes, clientMIC []byte
	pending              *pendingNTLM
	session              *sealSession
}

func (c *connContext) reset() {
	c.user, c.method, c.scheme, c.spnego, c.pending, c.session = "", "", "", false, nil, nil
	c.mechTypes, c.clientMIC = nil, nil
}

const maxConns = 4096

// conn returns the context for the request's connection, creating it.
func (a *Auth) conn(r *http.Request) *connContext {
	local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	key := connKey(local, stringAddr(r.RemoteAddr))
	now := a.opts.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	c, ok := a.conns[key]
	if !ok {
		if len(a.conns) >= maxConns {
			a.evictLocked(now)
		}
		c = &connContext{key: key}
		a.conns[key] = c
	}
	c.lastUsed = now
	return c
}

// evictLocked drops idle contexts, or the oldest one when none is idle.
func (a *Auth) evictLocked(now time.Time) {
	var oldest *connContext
	for k, c := range a.conns {
		if now.Sub(c.lastUsed) > a.opts.IdleTimeout {
			delete(a.conns, k)
			continue
		}
		if oldest == nil || c.lastUsed.Before(oldest.lastUsed) {
			oldest = c
		}
	}
	if len(a.conns) >= maxConns && oldest != nil {
		delete(a.conns, oldest.key)
	}
}

func (a *Auth) dropConn(c *connContext) {
	c.reset()
	a.mu.Lock()
	delete(a.conns, c.key)
	a.mu.Unlock()
}

type stringAddr string

func (s stringAddr) Network() string { return "tcp" }
func (s stringAddr) String() string  { return string(s) }

// Contexts reports how many connection contexts are held (for tests and metrics).
func (a *Auth) Contexts() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.conns)
}

func (a *Auth) attempt(r *http.Request, method, user string, err error) {
	if err != nil {
		a.opts.Logger.Info("wsauth: authentication failed", "method", method, "user", user, "remote", r.RemoteAddr, "err", err)
	}
	if a.opts.OnAttempt != nil {
		a.opts.OnAttempt(Attempt{Method: method, User: user, OK: err == nil, Remote: r.RemoteAddr, Err: err})
	}
}
