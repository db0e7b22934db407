package winrm

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	mz "github.com/masterzen/winrm"
	"github.com/svcwatch/svcwatch/internal/config"
	"github.com/svcwatch/svcwatch/internal/winrm/ntlmtransport"
)

// ntlmRoundTripper is WinRM with NTLM through internal/winrm/ntlmtransport:
// one transport, one keep-alive connection and one NTLM security context per
// host, kept across polls. Over http every message is sealed (MS-WSMV
// 2.2.9.1.1, never a plaintext fallback); over https TLS protects the
// messages and the NTLM AUTHENTICATE carries the TLS channel binding, as
// Windows clients send it (hosts with CbtHardeningLevel=Strict need it).
type ntlmRoundTripper struct {
	opts  ntlmtransport.Options
	port  int
	https bool

	mu    sync.Mutex
	hosts map[string]*ntlmtransport.Transport
}

func newNTLM(cfg config.WinRM, password string, opTimeout time.Duration) (*ntlmRoundTripper, error) {
	opts := ntlmtransport.Options{
		ChannelBinding: true,
		Username:       cfg.Username,
		Password:       password,
		Sealing:        ntlmtransport.SealAuto, // http: always sealed, never a plaintext fallback
		Timeout:        opTimeout + 30*time.Second,
		CleanupTimeout: deleteTimeout,
		DialTimeout:    dialTimeout,
		IdleTimeout:    cfg.KeepAlive,
		Dial:           dialFunc(cfg),
	}
	if cfg.Scheme == "https" {
		tc, err := tlsConfig(cfg)
		if err != nil {
			return nil, err
		}
		tc.NextProtos = []string{"http/1.1"}
		opts.TLSConfig = tc
	}
	// Validate the options once, up front.
	if _, err := ntlmtransport.New(opts); err != nil {
		return nil, err
	}
	return &ntlmRoundTripper{opts: opts, port: cfg.Port, https: cfg.Scheme == "https", hosts: map[string]*ntlmtransport.Transport{}}, nil
}

func (s *ntlmRoundTripper) host(host string) (*ntlmtransport.Transport, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if tr, ok := s.hosts[host]; ok {
		return tr, nil
	}
	// The AUTHENTICATE names the service it is for (MsvAvTargetName, as
	// Windows clients send it): a host that relays our authentication to
	// another service cannot pass it off as meant for that one where the
	// target checks the name (extended protection, SPN hardening).
	opts := s.opts
	opts.NTLM.TargetSPN = "HTTP/" + host
	tr, err := ntlmtransport.New(opts)
	if err != nil {
		return nil, err
	}
	if err := tr.Transport(&mz.Endpoint{Host: host, Port: s.port, HTTPS: s.https, Timeout: s.opts.Timeout}); err != nil {
		return nil, err
	}
	s.hosts[host] = tr
	return tr, nil
}

func (s *ntlmRoundTripper) roundTrip(ctx context.Context, host string, body []byte) (int, []byte, error) {
	tr, err := s.host(host)
	if err != nil {
		return 0, nil, fmt.Errorf("%w: %v", ErrProtocol, err)
	}
	out, err := tr.WithContext(ctx).RoundTrip(body)
	if err == nil {
		return 200, out, nil
	}
	var he *ntlmtransport.HTTPError
	if errors.As(err, &he) {
		return he.StatusCode, []byte(he.Body), nil
	}
	switch {
	case ctx.Err() != nil:
		return 0, nil, ctxError(ctx)
	case errors.Is(err, ntlmtransport.ErrAuth):
		return 0, nil, fmt.Errorf("%w: %v; %s", ErrAuth, err, remedyAuth)
	case errors.Is(err, ntlmtransport.ErrConnect):
		return 0, nil, classifyTransport(ctx, err)
	case errors.Is(err, ntlmtransport.ErrTimeout):
		return 0, nil, fmt.Errorf("%w: %v", ErrTimeout, err)
	}
	return 0, nil, fmt.Errorf("%w: %v", ErrProtocol, err)
}

func (s *ntlmRoundTripper) closeIdle() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for h, tr := range s.hosts {
		_ = tr.Close()
		delete(s.hosts, h)
	}
}
