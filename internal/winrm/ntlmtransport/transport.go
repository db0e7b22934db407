package ntlmtransport

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/masterzen/winrm"
	"github.com/masterzen/winrm/soap"
)

// Transport is a winrm.Transporter for one host. Create it with New, keep it
// across polls so the authenticated connection is reused, Close it when the
// host leaves the monitored set.
type Transport struct {
	opts Options
	sem  chan struct{} // one request at a time on the one connection
	base *Bound        // Post on the Transport itself uses Options.Context

	mu     sync.Mutex
	ep     *endpoint
	conn   *conn
	scheme string // "Negotiate" until a server offers only "NTLM"
	closed bool
}

// endpoint is the resolved configuration of the masterzen Endpoint.
type endpoint struct {
	https   bool
	host    string
	addr    string // host:port
	url     string
	seal    bool
	tls     *tls.Config
	timeout time.Duration
}

// New returns a Transport; it connects lazily, on the first request, after
// masterzen has called Transport with the endpoint.
func New(opts Options) (*Transport, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	t := &Transport{opts: opts, sem: make(chan struct{}, 1), scheme: "Negotiate"}
	t.base = t.WithContext(opts.Context)
	return t, nil
}

// WithContext returns a Transporter sharing this Transport's connection whose
// requests are bound to ctx: a request in flight when ctx is done is aborted
// and fails with ctx's error; requests started after that share one
// CleanupTimeout budget. Use one per poll or per masterzen Client.
func (t *Transport) WithContext(ctx context.Context) *Bound {
	return &Bound{t: t, ctx: ctx}
}

// Transport implements winrm.Transporter: it records the endpoint (scheme,
// host, port, TLS settings, timeout). Calling it again with a different
// endpoint drops the current connection.
func (t *Transport) Transport(e *winrm.Endpoint) error {
	ep, err := t.resolve(e)
	if err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ep != nil && (t.ep.addr != ep.addr || t.ep.https != ep.https || t.ep.seal != ep.seal) && t.conn != nil {
		t.conn.close()
		t.conn = nil
	}
	t.ep = ep
	return nil
}

// Post implements winrm.Transporter with Options.Context.
func (t *Transport) Post(c *winrm.Client, m *soap.SoapMessage) (string, error) {
	return t.base.Post(c, m)
}

// Close drops the connection; later requests fail.
func (t *Transport) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	if t.conn != nil {
		t.conn.close()
		t.conn = nil
	}
	return nil
}

func (t *Transport) resolve(e *winrm.Endpoint) (*endpoint, error) {
	if e == nil || e.Host == "" {
		return nil, errors.New("ntlmtransport: endpoint has no host")
	}
	if e.Port <= 0 || e.Port > 65535 {
		return nil, fmt.Errorf("ntlmtransport: %s: port %d out of range", e.Host, e.Port)
	}
	ep := &endpoint{https: e.HTTPS, host: e.Host, addr: net.JoinHostPort(e.Host, strconv.Itoa(e.Port))}
	scheme := "http"
	if e.HTTPS {
		scheme = "https"
	}
	ep.url = scheme + "://" + ep.addr + t.opts.Path
	switch t.opts.Sealing {
	case SealAuto:
		ep.seal = !e.HTTPS
	case SealAlways:
		ep.seal = true
	case SealNever:
		if !e.HTTPS && !t.opts.AllowUnsealedHTTP {
			return nil, fmt.Errorf("ntlmtransport: %s: NTLM over http without message encryption sends every SOAP message in clear; use https, or leave sealing on, or set winrm.allow_insecure", ep.addr)
		}
	default:
		return nil, fmt.Errorf("ntlmtransport: unknown sealing mode %d", t.opts.Sealing)
	}
	ep.timeout = t.opts.Timeout
	if ep.timeout == 0 {
		ep.timeout = e.Timeout
	}
	if ep.timeout <= 0 {
		ep.timeout = DefaultTimeout
	}
	if e.HTTPS {
		cfg, err := tlsConfig(t.opts.TLSConfig, e)
		if err != nil {
			return nil, fmt.Errorf("ntlmtransport: %s: %w", ep.addr, err)
		}
		ep.tls = cfg
	}
	return ep, nil
}

func tlsConfig(given *tls.Config, e *winrm.Endpoint) (*tls.Config, error) {
	if given != nil {
		cfg := given.Clone()
		if cfg.ServerName == "" {
			cfg.ServerName = serverName(e)
		}
		return cfg, nil
	}
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         serverName(e),
		InsecureSkipVerify: e.Insecure, //nolint:gosec // only when the operator asked for it
		NextProtos:         []string{"http/1.1"},
	}
	if len(e.CACert) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(e.CACert) {
			return nil, errors.New("the CA file holds no PEM certificate")
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

func serverName(e *winrm.Endpoint) string {
	if e.TLSServerName != "" {
		return e.TLSServerName
	}
	return e.Host
}

// Bound is a Transport bound to a context; it implements winrm.Transporter.
type Bound struct {
	t   *Transport
	ctx context.Context

	once          sync.Once
	cleanupCtx    context.Context
	cleanupCancel context.CancelFunc // released when the budget's timer fires
}

// Transport implements winrm.Transporter (see Transport.Transport).
func (b *Bound) Transport(e *winrm.Endpoint) error { return b.t.Transport(e) }

// Post implements winrm.Transporter.
func (b *Bound) Post(_ *winrm.Client, m *soap.SoapMessage) (string, error) {
	out, err := b.RoundTrip([]byte(m.String()))
	return string(out), err
}

// RoundTrip sends one SOAP message and returns the SOAP answer. A non-2xx
// answer is an *HTTPError carrying the decrypted body.
func (b *Bound) RoundTrip(msg []byte) ([]byte, error) {
	ctx, err := b.requestContext()
	if err != nil {
		return nil, err
	}
	return b.t.roundTrip(ctx, msg)
}

// requestContext is the bound context, or once it is done, the shared
// cleanup context.
func (b *Bound) requestContext() (context.Context, error) {
	if b.ctx.Err() == nil {
		return b.ctx, nil
	}
	if b.t.opts.CleanupTimeout < 0 {
		return nil, fmt.Errorf("ntlmtransport: %w", context.Cause(b.ctx))
	}
	b.once.Do(func() {
		b.cleanupCtx, b.cleanupCancel = context.WithTimeout(context.WithoutCancel(b.ctx), b.t.opts.CleanupTimeout)
	})
	return b.cleanupCtx, nil
}

var (
	_ winrm.Transporter = (*Transport)(nil)
	_ winrm.Transporter = (*Bound)(nil)
)
