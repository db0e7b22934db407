// Package winrm polls Windows hosts over WS-Management: one embedded
// PowerShell collector per host per poll (collector.ps1), over HTTPS with
// NTLM, Kerberos, client certificates or Basic, or HTTP with NTLM message
// encryption, and parses its JSON answer strictly into an
// inventory.Observation. Errors wrap the sentinels in errors.go.
package winrm

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	mz "github.com/masterzen/winrm"
	"github.com/svcwatch/svcwatch/internal/config"
	"github.com/svcwatch/svcwatch/internal/inventory"
)

// Defaults for zero config values.
const (
	DefaultTimeout        = 60 * time.Second
	DefaultMaxOutputBytes = 8 << 20
	DefaultMaxEvents      = 1000
	DefaultSession        = SessionShell
	maxStderrBytes        = 16 << 10
)

// Collector polls hosts. It is safe for concurrent use; connections are
// kept alive and reused per host.
type Collector struct {
	cfg    config.WinRM
	logger *slog.Logger
	tr     *transport
	params *mz.Parameters
	// sessions: the kept shells (winrm.session shell or persistent), nil per-poll.
	sessions *sessions
}

// New validates cfg and builds the transport. It refuses Basic over HTTP and
// NTLM over HTTP without encryption unless cfg.AllowInsecure, and warns
// about every insecure setting each time it is called.
func New(cfg config.WinRM, password string, logger *slog.Logger) (*Collector, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg, err := normalize(cfg)
	if err != nil {
		return nil, err
	}
	warnInsecure(cfg, logger)
	opTimeout := min(max(cfg.Timeout/2, time.Second), 60*time.Second)
	tr, err := newTransport(cfg, password, opTimeout)
	if err != nil {
		return nil, err
	}
	params := mz.NewParameters(fmt.Sprintf("PT%dS", int(opTimeout/time.Second)), "en-US", maxEnvelopeBytes)
	c := &Collector{cfg: cfg, logger: logger, tr: tr, params: params}
	if cfg.Session == SessionPersistent || cfg.Session == SessionShell {
		c.sessions = newSessions()
		c.sessions.logger = logger
		c.sessions.startDel = func() {
			c.sessions.sweep.Add(1)
			go c.runSweeper()
		}
	}
	return c, nil
}

func normalize(cfg config.WinRM) (config.WinRM, error) {
	cfg.Scheme = strings.ToLower(cmp.Or(cfg.Scheme, "https"))
	cfg.Auth = strings.ToLower(cmp.Or(cfg.Auth, "ntlm"))
	switch cfg.Scheme {
	case "https":
		if cfg.Port == 0 {
			cfg.Port = 5986
		}
	case "http":
		if cfg.Port == 0 {
			cfg.Port = 5985
		}
	default:
		return cfg, fmt.Errorf("winrm.scheme %q: want https or http", cfg.Scheme)
	}
	if cfg.Port < 1 || cfg.Port > 65535 {
		return cfg, fmt.Errorf("winrm.port %d: want 1..65535", cfg.Port)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxOutputBytes <= 0 {
		cfg.MaxOutputBytes = DefaultMaxOutputBytes
	}
	if cfg.MaxEvents <= 0 {
		cfg.MaxEvents = DefaultMaxEvents
	}
	cfg.MaxEvents = min(cfg.MaxEvents, maxEventsLimit)
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = config.ShortKeepAlive
	}
	cfg.Session = strings.ToLower(cmp.Or(cfg.Session, DefaultSession))
	if cfg.Session != SessionPersistent && cfg.Session != SessionPerPoll && cfg.Session != SessionShell {
		return cfg, fmt.Errorf("winrm.session %q: want %s, %s or %s", cfg.Session, SessionPerPoll, SessionShell, SessionPersistent)
	}
	if cfg.Scheme == "http" && !cfg.AllowInsecure {
		switch cfg.Auth {
		case "basic":
			return cfg, errors.New("winrm: basic authentication over http sends the password in clear text; use winrm.scheme https (port 5986), or set winrm.allow_insecure: true to accept the risk")
		case "kerberos":
			return cfg, errors.New("winrm: kerberos over http needs message encryption, which svcwatch does not implement; use winrm.scheme https, or auth ntlm over http (encrypted), or set winrm.allow_insecure: true for a listener with AllowUnencrypted=true")
		}
	}
	if cfg.Scheme == "http" && cfg.Auth == "certificate" {
		return cfg, errors.New("winrm: certificate authentication needs winrm.scheme https")
	}
	if (cfg.Auth == "ntlm" || cfg.Auth == "basic") && cfg.Username == "" {
		return cfg, fmt.Errorf("winrm.username is required for auth %s (DOMAIN\\user or user@domain)", cfg.Auth)
	}
	if cfg.ConnectTo != "" {
		if _, _, err := splitHostPort(cfg.ConnectTo); err != nil {
			return cfg, fmt.Errorf("winrm.connect_to %q: want host:port: %v", cfg.ConnectTo, err)
		}
	}
	return cfg, nil
}

func warnInsecure(cfg config.WinRM, logger *slog.Logger) {
	if cfg.Scheme == "http" && cfg.AllowInsecure && (cfg.Auth == "basic" || cfg.Auth == "kerberos") {
		logger.Warn("winrm: allow_insecure is set: WinRM traffic to every host is NOT encrypted", "scheme", cfg.Scheme, "auth", cfg.Auth)
	}
	if cfg.InsecureSkipVerify {
		logger.Warn("winrm: insecure_skip_verify is set: host TLS certificates are NOT verified, anyone on the path can impersonate a host")
	}
}

// Collect runs the collector once on host and returns what it saw. The
// whole exchange is bounded by winrm.timeout; the shell is always deleted.
func (c *Collector) Collect(ctx context.Context, host inventory.Host, req inventory.CollectRequest) (inventory.Observation, error) {
	name := hostKey(host.Name)
	obs, err := c.collect(ctx, name, req)
	if err != nil {
		return inventory.Observation{}, fmt.Errorf("%s: %w", sanitize(name, 255), err)
	}
	return obs, nil
}

func (c *Collector) collect(ctx context.Context, host string, req inventory.CollectRequest) (inventory.Observation, error) {
	if err := checkHostName(host); err != nil {
		return inventory.Observation{}, fmt.Errorf("%w: host name: %v", ErrUnreachable, err)
	}
	r := collectRequest{Watermark: req.Watermark, Digest: req.Digest, Lookback: req.Lookback, MaxEvents: req.MaxEvents}
	if r.MaxEvents <= 0 {
		r.MaxEvents = c.cfg.MaxEvents
	}
	r.MaxEvents = min(r.MaxEvents, maxEventsLimit)
	r.Lookback = min(max(r.Lookback, 0), maxLookback)
	if r.Digest != "" && !isDigest(r.Digest) {
		// A stored digest that is not one: ask for the full inventory.
		c.logger.Warn("winrm: ignoring a malformed previous digest", "host", host)
		r.Digest = ""
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	var ans answer
	parse := func(out []byte) error {
		var err error
		if ans, err = parseAnswer(out, r); err != nil {
			return fmt.Errorf("parse: %w", err)
		}
		return nil
	}
	var err error
	switch c.cfg.Session {
	case SessionPersistent:
		err = c.pollSession(ctx, host, r, parse)
	case SessionShell:
		err = c.pollShell(ctx, host, r, parse)
	default:
		var out []byte
		if out, err = c.runOnce(ctx, host, r); err == nil {
			err = parse(out)
		}
	}
	if err != nil {
		return inventory.Observation{}, err
	}
	for _, e := range ans.Errors {
		c.logger.Warn("winrm: collector reported a partial failure", "host", host, "error", sanitize(e, 500))
	}
	ans.Observation.Host = host
	return ans.Observation, nil
}

// runOnce is protocol v1: the whole script as one command in a new shell.
func (c *Collector) runOnce(ctx context.Context, host string, r collectRequest) ([]byte, error) {
	cmd, err := commandLine(r)
	if err != nil {
		return nil, fmt.Errorf("request: %w: %v", ErrProtocol, err)
	}
	stdout := &capWriter{max: c.cfg.MaxOutputBytes}
	stderr := &capWriter{max: maxStderrBytes}
	exit, err := c.tr.runCommand(ctx, host, c.params, cmd, stdout, stderr)
	if err != nil {
		return nil, err
	}
	return c.commandOutput(exit, stdout, stderr)
}

// commandOutput is a finished v1 collector's answer, or why there is none.
func (c *Collector) commandOutput(exit int, stdout, stderr *capWriter) ([]byte, error) {
	if stdout.dropped > 0 {
		return nil, fmt.Errorf("receive: %w: more than %d bytes of output (winrm.max_output_bytes)", ErrOutputTooLarge, c.cfg.MaxOutputBytes)
	}
	if exit != 0 {
		return nil, fmt.Errorf("collector: %w: exit code %d: %s", ErrScript, exit, sanitize(string(stderr.buf), 500))
	}
	return stdout.buf, nil
}

// Forget releases what the collector keeps for host once it is no longer
// polled (removed from AD or out of scope): its kept shell is deleted in the
// background. A later Collect for the host starts afresh.
func (c *Collector) Forget(host string) {
	if c.sessions != nil {
		c.sessions.forget(hostKey(host))
	}
}

// hostKey is the form of a host name the collector works with: lower case,
// no trailing dot.
func hostKey(name string) string { return strings.ToLower(strings.TrimSuffix(name, ".")) }

// Close deletes the kept shells of persistent sessions (bounded in time),
// then releases connections and the Kerberos login; the Collector may not
// be used afterwards. Its error names the hosts whose shell could not be
// deleted (they expire on the host's idle timeout).
func (c *Collector) Close() error {
	var err error
	if c.sessions != nil {
		err = c.closeSessions()
	}
	c.tr.rt.closeIdle()
	return err
}

// checkHostName accepts DNS names only: the name goes into a URL and an SPN
// and comes from AD, which an attacker may have written to.
func checkHostName(h string) error {
	if !inventory.ValidHostName(h) {
		return fmt.Errorf("%q is not a DNS host name", sanitize(h, 64))
	}
	return nil
}
