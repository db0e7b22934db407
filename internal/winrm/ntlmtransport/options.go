package ntlmtransport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/svcwatch/svcwatch/internal/ntlm"
)

// Sealing says whether SOAP messages are NTLM-encrypted (MS-WSMV 2.2.9.1.1).
type Sealing int

const (
	// SealAuto seals over http and not over https (TLS already protects it).
	SealAuto Sealing = iota
	// SealAlways seals over http and https.
	SealAlways
	// SealNever sends plaintext SOAP after authenticating; over http it
	// needs AllowUnsealedHTTP.
	SealNever
)

// Defaults.
const (
	DefaultTimeout          = 90 * time.Second
	DefaultDialTimeout      = 10 * time.Second
	DefaultCleanupTimeout   = 10 * time.Second
	DefaultIdleTimeout      = 30 * time.Second
	DefaultLargeResponse    = 16 << 10
	DefaultLargeIdleTimeout = 2 * time.Second
	DefaultMaxResponseBytes = 8 << 20
	DefaultPath             = "/wsman"
	DefaultUserAgent        = "svcwatch WinRM client"
)

// Options configure a Transport; New fills the defaults.
type Options struct {
	// Username is DOMAIN\user or a UPN (user@corp.example).
	Username string
	// Password of the account. Never logged.
	Password string
	// Workstation name sent in the AUTHENTICATE message (optional).
	Workstation string

	// Sealing: SealAuto by default.
	Sealing Sealing
	// AllowUnsealedHTTP permits SealNever over http, which sends SOAP in clear.
	AllowUnsealedHTTP bool

	// Context is the base context of every request made through the
	// Transport itself; WithContext binds another one. Background when nil.
	Context context.Context
	// Timeout bounds one SOAP round trip, handshake included. It must exceed
	// the WS-Management OperationTimeout of the client (masterzen's PT60S by
	// default), since a Receive may legitimately wait that long. When zero,
	// the endpoint's Timeout is used if set, else DefaultTimeout.
	Timeout time.Duration
	// CleanupTimeout is the budget of a request started after the bound
	// context is already done, so that masterzen can still signal the command
	// and delete the shell after a cancellation. Negative: such requests fail
	// at once with the context's error. DefaultCleanupTimeout when zero.
	CleanupTimeout time.Duration
	// DialTimeout bounds TCP connect plus TLS handshake; DefaultDialTimeout when zero.
	DialTimeout time.Duration
	// IdleTimeout: a connection idle longer than this is closed and a new one
	// authenticated, rather than racing the server's keep-alive timeout.
	IdleTimeout time.Duration
	// LargeResponse and LargeIdleTimeout: a connection that carried a
	// response body larger than LargeResponse bytes (a full inventory) is
	// closed after LargeIdleTimeout unused instead of IdleTimeout. TLS keeps
	// read buffers sized for the largest records seen (about 30 KB), and a
	// poller with thousands of hosts should not hold that per host between
	// polls; the requests that follow within a poll still reuse it. Defaults
	// DefaultLargeResponse and DefaultLargeIdleTimeout.
	LargeResponse    int64
	LargeIdleTimeout time.Duration
	// MaxResponseBytes caps one HTTP response body; past it the connection is
	// dropped and the request fails with ErrResponseTooLarge.
	MaxResponseBytes int64

	// TLSConfig for https. When nil it is built from the masterzen Endpoint
	// (CACert, Insecure, TLSServerName) with TLS 1.2 as the minimum.
	TLSConfig *tls.Config
	// Dial opens TCP connections; a net.Dialer when nil.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Path of the WS-Management endpoint; DefaultPath when empty.
	Path string
	// UserAgent header; DefaultUserAgent when empty.
	UserAgent string

	// ChannelBinding sends the TLS channel binding (RFC 5929
	// tls-server-end-point) in the NTLM AUTHENTICATE over https, as Windows
	// clients do; hosts with CbtHardeningLevel=Strict require it.
	ChannelBinding bool

	// NTLM tunes the security context (SPN, randomness, clock for tests).
	NTLM ntlm.Options
}

func (o *Options) setDefaults() error {
	if o.Username == "" {
		return errors.New("ntlmtransport: no username: set winrm.username (DOMAIN\\user or user@domain)")
	}
	if o.Context == nil {
		o.Context = context.Background()
	}
	if o.Timeout < 0 || o.DialTimeout < 0 || o.IdleTimeout < 0 || o.MaxResponseBytes < 0 || o.LargeResponse < 0 || o.LargeIdleTimeout < 0 {
		return fmt.Errorf("ntlmtransport: negative timeout or size in options")
	}
	if o.CleanupTimeout == 0 {
		o.CleanupTimeout = DefaultCleanupTimeout
	}
	if o.DialTimeout == 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	if o.LargeResponse == 0 {
		o.LargeResponse = DefaultLargeResponse
	}
	if o.LargeIdleTimeout == 0 {
		o.LargeIdleTimeout = DefaultLargeIdleTimeout
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.MaxResponseBytes == 0 {
		o.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if o.Path == "" {
		o.Path = DefaultPath
	}
	if o.UserAgent == "" {
		o.UserAgent = DefaultUserAgent
	}
	if o.Dial == nil {
		d := &net.Dialer{KeepAlive: 30 * time.Second}
		o.Dial = d.DialContext
	}
	return nil
}
