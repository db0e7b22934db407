package winrm

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/svcwatch/svcwatch/internal/config"
)

const (
	maxEnvelopeBytes = 153600  // MaxEnvelopeSize we ask for (bytes)
	maxReplyBytes    = 4 << 20 // hard cap on one reply, whatever the host says
	dialTimeout      = 10 * time.Second
	tlsTimeout       = 10 * time.Second
	soapContentType  = "application/soap+xml;charset=UTF-8"
)

// authorizer adds credentials to one request for one host.
type authorizer interface {
	authorize(req *http.Request, host string) error
}

// soapRoundTripper sends one SOAP envelope to a host and returns the HTTP
// status and the (decrypted) reply. Its errors are already classified.
type soapRoundTripper interface {
	roundTrip(ctx context.Context, host string, body []byte) (status int, reply []byte, err error)
	closeIdle()
}

// transport sends SOAP envelopes to hosts and turns answers into envelopes
// or classified errors.
type transport struct {
	scheme string
	port   int
	rt     soapRoundTripper
	// kerberos: a 401 after a valid ticket means "no rights", not "bad password".
	credentialsProven bool
}

func (t *transport) url(host string) string {
	return t.scheme + "://" + net.JoinHostPort(host, strconv.Itoa(t.port)) + "/wsman"
}

// post sends one envelope and returns the parsed answer. Faults come back as
// errors wrapping a sentinel (see classifyFault).
func (t *transport) post(ctx context.Context, host string, body string) (*envelope, error) {
	status, data, err := t.rt.roundTrip(ctx, host, []byte(body))
	if err != nil {
		return nil, err
	}
	switch status {
	case http.StatusOK:
		env, err := parseEnvelope(data)
		if err != nil {
			return nil, err
		}
		if env.Fault != nil {
			return nil, classifyFault(env.Fault)
		}
		return env, nil
	case http.StatusUnauthorized:
		if t.credentialsProven {
			return nil, fmt.Errorf("%w: %w: HTTP 401 with a valid Kerberos ticket; %s", ErrAuth, ErrAccessDenied, remedyAccess)
		}
		return nil, fmt.Errorf("%w: HTTP 401: %s", ErrAuth, remedyAuth)
	case http.StatusForbidden:
		return nil, fmt.Errorf("%w: HTTP 403; %s", ErrAccessDenied, remedyAccess)
	}
	if bytes.Contains(data, []byte("Fault")) {
		if env, perr := parseEnvelope(data); perr == nil && env.Fault != nil {
			return nil, classifyFault(env.Fault)
		}
	}
	return nil, fmt.Errorf("%w: HTTP %d without a WS-Management fault: %s", ErrProtocol, status, sanitize(string(data), 200))
}

// httpRoundTripper is net/http with an authorizer: Basic, Kerberos (SPNEGO)
// or a client certificate.
type httpRoundTripper struct {
	scheme string
	port   int
	client *http.Client
	auth   authorizer
}

func (h *httpRoundTripper) roundTrip(ctx context.Context, host string, body []byte) (status int, reply []byte, err error) {
	url := h.scheme + "://" + net.JoinHostPort(host, strconv.Itoa(h.port)) + "/wsman"
	tctx, done := trackConn(ctx)
	defer func() { done(len(reply)) }()
	req, err := http.NewRequestWithContext(tctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, fmt.Errorf("%w: %v", ErrProtocol, err)
	}
	req.Header.Set("Content-Type", soapContentType)
	if err := h.auth.authorize(req, host); err != nil {
		if ctx.Err() != nil {
			return 0, nil, ctxError(ctx)
		}
		return 0, nil, err
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return 0, nil, classifyTransport(ctx, err)
	}
	defer resp.Body.Close()
	if inv, ok := h.auth.(interface{ invalidate(host string) }); ok && resp.StatusCode == http.StatusUnauthorized {
		inv.invalidate(host) // a rejected ticket is not reused
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxReplyBytes+1))
	if err != nil {
		return 0, nil, classifyTransport(ctx, err)
	}
	if len(data) > maxReplyBytes {
		return 0, nil, fmt.Errorf("%w: a reply larger than %d bytes", ErrProtocol, maxReplyBytes)
	}
	return resp.StatusCode, data, nil
}

func (h *httpRoundTripper) closeIdle() {
	h.client.CloseIdleConnections()
	if c, ok := h.auth.(interface{ close() }); ok {
		c.close()
	}
}

// newTransport builds the HTTP side for cfg: TLS, dialing (connect_to),
// timeouts, keep-alive, and the authenticator.
func newTransport(cfg config.WinRM, password string, opTimeout time.Duration) (*transport, error) {
	t := &transport{scheme: cfg.Scheme, port: cfg.Port}
	if cfg.Auth == "ntlm" {
		rt, err := newNTLM(cfg, password, opTimeout)
		if err != nil {
			return nil, err
		}
		t.rt = rt
		return t, nil
	}
	base, err := baseTransport(cfg, opTimeout)
	if err != nil {
		return nil, err
	}
	h := &httpRoundTripper{scheme: cfg.Scheme, port: cfg.Port}
	switch cfg.Auth {
	case "basic":
		h.auth = basicAuth{user: cfg.Username, password: password}
	case "certificate":
		h.auth = certAuth{}
	case "kerberos":
		ka, err := newKerberosAuth(cfg, password)
		if err != nil {
			return nil, err
		}
		h.auth = ka
		t.credentialsProven = true
	default:
		return nil, fmt.Errorf("winrm.auth %q: want ntlm, kerberos, certificate or basic", cfg.Auth)
	}
	h.client = &http.Client{
		Transport: base,
		// WS-Management never redirects; following one could leak credentials.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	t.rt = h
	return t, nil
}

// dialFunc dials addr, or cfg.ConnectTo for every host when set.
func dialFunc(cfg config.WinRM) func(ctx context.Context, network, addr string) (net.Conn, error) {
	dialer := &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	if cfg.ConnectTo == "" {
		return dialer.DialContext
	}
	target := cfg.ConnectTo
	return func(ctx context.Context, network, _ string) (net.Conn, error) {
		return dialer.DialContext(ctx, network, target)
	}
}

func baseTransport(cfg config.WinRM, opTimeout time.Duration) (*http.Transport, error) {
	tlsConf, err := tlsConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &http.Transport{
		Proxy:                 nil, // WinRM goes straight to the host, never through HTTP(S)_PROXY
		DialContext:           trackingDial(dialFunc(cfg), min(largeIdle, cfg.KeepAlive)),
		TLSClientConfig:       tlsConf,
		TLSHandshakeTimeout:   tlsTimeout,
		ResponseHeaderTimeout: opTimeout + 30*time.Second,
		MaxIdleConnsPerHost:   2,
		IdleConnTimeout:       cfg.KeepAlive,
		DisableCompression:    true,
	}, nil
}

func tlsConfig(cfg config.WinRM) (*tls.Config, error) {
	tc := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         cfg.TLSServerName,      // "" means the host name from the URL
		InsecureSkipVerify: cfg.InsecureSkipVerify, //nolint:gosec // operator's explicit choice, warned about in New
		// Windows asks for renegotiation when it wants a client certificate.
		Renegotiation: tls.RenegotiateOnceAsClient,
	}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("winrm.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("winrm.ca_file %s: no PEM certificate found", cfg.CAFile)
		}
		tc.RootCAs = pool
	}
	if cfg.Auth == "certificate" {
		if cfg.CertFile == "" || cfg.KeyFile == "" {
			return nil, fmt.Errorf("winrm.auth certificate needs winrm.cert_file and winrm.key_file (PEM)")
		}
		cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("winrm.cert_file / winrm.key_file: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

func splitHostPort(hp string) (string, int, error) {
	h, p, err := net.SplitHostPort(hp)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 1 || port > 65535 {
		return "", 0, fmt.Errorf("bad port %q", p)
	}
	return h, port, nil
}
