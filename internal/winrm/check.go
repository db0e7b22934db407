package winrm

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/svcwatch/svcwatch/internal/config"
)

// CheckStep is one line of `svcwatch check HOST`.
type CheckStep struct {
	Name   string // DNS, TCP, TLS, authentication, WinRM permission, System log, services
	OK     bool
	Detail string // what was seen
	Remedy string // what to do, when !OK
}

// Check diagnoses one host step by step: DNS, TCP, TLS (certificate subject,
// expiry, chain), authentication, WinRM permission (create a shell), System
// log read and service enumeration (one collector run). It stops at the first
// failed network step; later steps are then reported as not run.
func Check(ctx context.Context, cfg config.WinRM, password string, host string) []CheckStep {
	host = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(host), "."))
	var steps []CheckStep
	add := func(s CheckStep) bool { steps = append(steps, s); return s.OK }
	ncfg, err := normalize(cfg)
	if err != nil {
		add(CheckStep{Name: "configuration", Detail: err.Error(), Remedy: "fix the winrm section of the configuration"})
		return steps
	}
	if err := checkHostName(host); err != nil {
		add(CheckStep{Name: "host name", Detail: err.Error(), Remedy: "give the host's DNS name, e.g. dc01.corp.example"})
		return steps
	}
	timeout := min(ncfg.Timeout, 30*time.Second)
	addr := net.JoinHostPort(host, strconv.Itoa(ncfg.Port))
	dnsName := host
	if ncfg.ConnectTo != "" {
		addr = ncfg.ConnectTo
		dnsName, _, _ = splitHostPort(ncfg.ConnectTo)
	}

	// DNS
	dctx, cancel := context.WithTimeout(ctx, timeout)
	ips, err := net.DefaultResolver.LookupHost(dctx, dnsName)
	cancel()
	if !add(dnsStep(dnsName, ips, err, ncfg.ConnectTo)) {
		return steps
	}

	// TCP
	start := time.Now()
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		add(CheckStep{Name: "TCP", Detail: fmt.Sprintf("connect %s: %v", addr, err),
			Remedy: fmt.Sprintf("make sure WinRM listens on port %d (winrm quickconfig%s) and that firewalls between svcwatch and the host allow it", ncfg.Port, map[bool]string{true: " -transport:https", false: ""}[ncfg.Scheme == "https"])})
		return steps
	}
	add(CheckStep{Name: "TCP", OK: true, Detail: fmt.Sprintf("connected to %s in %s", addr, time.Since(start).Round(time.Millisecond))})

	// TLS
	if ncfg.Scheme == "https" {
		ok := add(tlsStep(ctx, conn, ncfg, host, timeout))
		if !ok {
			return steps
		}
	} else {
		_ = conn.Close()
		if ncfg.Auth == "ntlm" {
			add(CheckStep{Name: "TLS", OK: true, Detail: "not used (winrm.scheme http: NTLM message encryption protects the traffic)"})
		} else {
			add(CheckStep{Name: "TLS", OK: true, Detail: fmt.Sprintf("not used: winrm.scheme http with auth %s sends every message in clear text (winrm.allow_insecure)", ncfg.Auth)})
		}
	}

	// Authentication, permission, log, services: one collector run.
	c, err := New(cfg, password, nil)
	if err != nil {
		add(CheckStep{Name: "authentication", Detail: err.Error(), Remedy: "fix the winrm section of the configuration"})
		return steps
	}
	defer c.Close()
	r := collectRequest{MaxEvents: 1, Lookback: 24 * time.Hour}
	cmd, _ := commandLine(r)
	rctx, cancel := context.WithTimeout(ctx, ncfg.Timeout)
	defer cancel()
	stdout, stderr := &capWriter{max: ncfg.MaxOutputBytes}, &capWriter{max: maxStderrBytes}
	exit, err := c.tr.runCommand(rctx, host, c.params, cmd, stdout, stderr)
	switch {
	case errors.Is(err, ErrAuth) && !errors.Is(err, ErrAccessDenied):
		add(CheckStep{Name: "authentication", Detail: err.Error(), Remedy: remedyAuth})
		return steps
	case errors.Is(err, ErrAccessDenied):
		add(CheckStep{Name: "authentication", OK: true, Detail: "credentials accepted"})
		add(CheckStep{Name: "WinRM permission", Detail: err.Error(), Remedy: remedyAccess})
		return steps
	case err != nil && strings.HasPrefix(err.Error(), "create shell"):
		add(CheckStep{Name: "authentication", Detail: "not verified: " + err.Error(), Remedy: remedyFor(err)})
		return steps
	}
	add(CheckStep{Name: "authentication", OK: true, Detail: fmt.Sprintf("%s accepted over %s", ncfg.Auth, ncfg.Scheme)})
	add(CheckStep{Name: "WinRM permission", OK: true, Detail: "created and deleted a shell"})
	if err == nil && exit != 0 {
		err = fmt.Errorf("%w: exit code %d: %s", ErrScript, exit, sanitize(string(stderr.buf), 300))
	}
	var ans answer
	if err == nil {
		ans, err = parseAnswer(stdout.buf, r)
	}
	if err != nil {
		add(CheckStep{Name: "System log", Detail: "the collector did not answer: " + err.Error(), Remedy: remedyFor(err)})
		return steps
	}
	logErr, svcErr := "", ""
	for _, e := range ans.Errors {
		switch {
		case strings.HasPrefix(e, "log:") || strings.HasPrefix(e, "events:"):
			logErr = cmp.Or(logErr, e)
		case strings.HasPrefix(e, "state:") || strings.HasPrefix(e, "service "):
			svcErr = cmp.Or(svcErr, e)
		}
	}
	o := ans.Observation
	if logErr != "" {
		add(CheckStep{Name: "System log", Detail: sanitize(logErr, 300), Remedy: "add the svcwatch account to Event Log Readers on the host (on DCs: the builtin domain group)"})
	} else {
		add(CheckStep{Name: "System log", OK: true, Detail: fmt.Sprintf("records %d..%d, %d bytes max, retention %s", o.Log.OldestRecord, o.Log.NewestRecord, o.Log.MaxBytes, cmp.Or(o.Log.Retention, "unknown"))})
	}
	drivers := 0
	for _, s := range o.Services {
		if s.IsDriver() {
			drivers++
		}
	}
	switch {
	case len(o.Services) == 0:
		add(CheckStep{Name: "services", Detail: "no services listed", Remedy: "check that the account can read HKLM\\SYSTEM\\CurrentControlSet\\Services"})
	case svcErr != "":
		add(CheckStep{Name: "services", Detail: fmt.Sprintf("%d services and drivers, but: %s", len(o.Services), sanitize(svcErr, 300)),
			Remedy: "extend the SCM security descriptor so the account may enumerate services (sc sdshow scmanager / sc sdset scmanager)"})
	default:
		add(CheckStep{Name: "services", OK: true, Detail: fmt.Sprintf("%d services and %d drivers, digest %s…", len(o.Services)-drivers, drivers, o.Digest[:12])})
	}
	return steps
}

func dnsStep(name string, ips []string, err error, connectTo string) CheckStep {
	via := ""
	if connectTo != "" {
		via = " (winrm.connect_to)"
	}
	if err != nil {
		return CheckStep{Name: "DNS", Detail: fmt.Sprintf("%s%s: %v", name, via, err), Remedy: "check the host name and that svcwatch's resolver knows the AD zone"}
	}
	return CheckStep{Name: "DNS", OK: true, Detail: fmt.Sprintf("%s%s resolves to %s", name, via, strings.Join(ips, ", "))}
}

func tlsStep(ctx context.Context, conn net.Conn, cfg config.WinRM, host string, timeout time.Duration) CheckStep {
	tc, err := tlsConfig(cfg)
	if err != nil {
		_ = conn.Close()
		return CheckStep{Name: "TLS", Detail: err.Error(), Remedy: "fix winrm.ca_file / cert_file / key_file"}
	}
	if tc.ServerName == "" {
		tc.ServerName = host
	}
	// Handshake without verification to show the certificate, then verify.
	verify := !tc.InsecureSkipVerify
	tc.InsecureSkipVerify = true //nolint:gosec // verified by hand below
	tconn := tls.Client(conn, tc)
	hctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	defer tconn.Close()
	if err := tconn.HandshakeContext(hctx); err != nil {
		return CheckStep{Name: "TLS", Detail: fmt.Sprintf("handshake: %v", err), Remedy: "is the port an HTTPS listener (5986)? winrm enumerate winrm/config/listener on the host"}
	}
	certs := tconn.ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return CheckStep{Name: "TLS", Detail: "the host sent no certificate", Remedy: "configure the HTTPS listener's certificate"}
	}
	leaf := certs[0]
	detail := fmt.Sprintf("certificate %q issued by %q, valid until %s", leaf.Subject.String(), leaf.Issuer.String(), leaf.NotAfter.UTC().Format("2006-01-02"))
	if left := time.Until(leaf.NotAfter); left < 0 {
		return CheckStep{Name: "TLS", Detail: detail + " (EXPIRED)", Remedy: "renew the host's WinRM HTTPS certificate"}
	} else if left < 14*24*time.Hour {
		detail += fmt.Sprintf(" (expires in %d days)", int(left.Hours()/24))
	}
	if !verify {
		return CheckStep{Name: "TLS", OK: true, Detail: detail + "; NOT verified (insecure_skip_verify)"}
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: tc.ServerName, Roots: tc.RootCAs, Intermediates: inter}); err != nil {
		return CheckStep{Name: "TLS", Detail: detail + ": " + err.Error(), Remedy: "set winrm.ca_file to the CA that issued this certificate, or winrm.tls_server_name to a name it carries"}
	}
	return CheckStep{Name: "TLS", OK: true, Detail: detail + "; chain verified"}
}

func remedyFor(err error) string {
	switch {
	case errors.Is(err, ErrQuota):
		return remedyQuota
	case errors.Is(err, ErrAccessDenied):
		return remedyAccess
	case errors.Is(err, ErrAuth):
		return remedyAuth
	case errors.Is(err, ErrTimeout):
		return "raise winrm.timeout, or check the host's load"
	case errors.Is(err, ErrUnreachable):
		return "check the network path and the listener"
	}
	return "run the collector by hand on the host to see its error (powershell -File collector.ps1)"
}
