package winrm

import (
	"fmt"
	"log/slog"
	"net/http"

	ntlmssp "github.com/Azure/go-ntlmssp"
	"github.com/svcwatch/svcwatch/internal/config"
)

// basicAuth sends user and password as Basic credentials; over NTLM the
// negotiator turns them into an NTLM handshake and never sends them as Basic.
type basicAuth struct{ user, password string }

func (a basicAuth) authorize(req *http.Request, _ string) error {
	req.SetBasicAuth(a.user, a.password)
	return nil
}

// certAuth: the TLS client certificate authenticates; WinRM wants this header.
type certAuth struct{}

func (certAuth) authorize(req *http.Request, _ string) error {
	req.Header.Set("Authorization", "http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/https/mutual")
	return nil
}

// noAuth: the round tripper authenticates (sealed NTLM).
type noAuth struct{}

func (noAuth) authorize(*http.Request, string) error { return nil }

// ntlmPlain is NTLM authentication over HTTPS (TLS protects the messages), or
// over plain HTTP when the operator allowed it.
type ntlmPlain struct{ ntlmssp.Negotiator }

func newNTLM(base http.RoundTripper) ntlmPlain {
	return ntlmPlain{ntlmssp.Negotiator{RoundTripper: base}}
}

// SealedTransportFunc builds an http.RoundTripper for WinRM over HTTP with
// NTLM message encryption (MS-WSMV 2.2.9.1): it authenticates and seals each
// request and unseals each reply, one security context per connection.
type SealedTransportFunc func(base *http.Transport, username, password string, logger *slog.Logger) (http.RoundTripper, error)

// sealedTransport is set when internal/winrm/ntlmtransport is wired in.
var sealedTransport SealedTransportFunc

// sealedOrPlain picks the transport for http + ntlm: sealed when available,
// plaintext NTLM only when the operator allowed insecure transports.
func sealedOrPlain(cfg config.WinRM, base *http.Transport, password string, logger *slog.Logger) (http.RoundTripper, error) {
	if sealedTransport != nil {
		return sealedTransport(base, cfg.Username, password, logger)
	}
	if cfg.AllowInsecure {
		return newNTLM(base), nil
	}
	return nil, fmt.Errorf("%w: NTLM message encryption for winrm.scheme http is not yet available in this build; use winrm.scheme https (port 5986), or set winrm.allow_insecure: true for a listener with AllowUnencrypted=true", ErrNotAvailable)
}
