package winrm

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
)

// Sentinel errors; every error Collect returns wraps one of them (use errors.Is).
var (
	// ErrAuth: the host rejected the credentials (HTTP 401). Do not retry fast.
	ErrAuth = errors.New("authentication failed")
	// ErrAccessDenied: authenticated, but the account lacks WinRM or event-log rights.
	ErrAccessDenied = errors.New("access denied")
	// ErrQuota: a WinRM per-user quota (shells or concurrent operations) is exhausted.
	ErrQuota = errors.New("WinRM quota exceeded")
	// ErrTimeout: the per-host deadline passed.
	ErrTimeout = errors.New("timed out")
	// ErrUnreachable: DNS, TCP or TLS failed.
	ErrUnreachable = errors.New("unreachable")
	// ErrProtocol: a malformed or unexpected answer.
	ErrProtocol = errors.New("protocol error")
	// ErrOutputTooLarge: the collector's output passed winrm.max_output_bytes.
	ErrOutputTooLarge = errors.New("output too large")
	// ErrShellNotFound: the host no longer knows the shell or command (recycled).
	ErrShellNotFound = errors.New("shell not found")
	// ErrCommandTooLong: the host refused the command line as too long.
	ErrCommandTooLong = errors.New("command line too long")
	// ErrFault: any other WS-Management fault.
	ErrFault = errors.New("WS-Management fault")
	// ErrScript: the collector script ran but could not answer (non-zero exit).
	ErrScript = errors.New("collector failed")
)

// errOperationTimeout is the WS-Management TimedOut fault: on Receive it only
// means "no output yet, ask again".
// Outside Receive it is a timeout like any other.
var errOperationTimeout = fmt.Errorf("%w: WS-Management OperationTimeout expired", ErrTimeout)

// WS-Management and Win32 codes seen in faults.
const (
	codeAccessDenied     = 2147942405 // 0x80070005 E_ACCESSDENIED
	codeAccessDeniedW32  = 5          // ERROR_ACCESS_DENIED
	codeMaxShells        = 2150859173 // 0x803381A5 MaxShellsPerUser
	codeMaxOperations    = 2150859174 // 0x803381A6 MaxConcurrentOperationsPerUser
	codeInvalidSelectors = 2150858843 // 0x8033805B shell or command not found
	codeTimedOut         = 2150858793 // 0x80338029 OperationTimeout expired
	codeFilenameTooLong  = 2147942606 // 0x800700CE ERROR_FILENAME_EXCED_RANGE
)

// Remedy texts, shared by Collect errors and Check.
const (
	remedyAccess = "add the svcwatch account to the host's Remote Management Users group (WinRM) and Event Log Readers group (System log); on domain controllers these are the builtin domain groups"
	remedyQuota  = "back off and retry later: svcwatch deletes its shell after every poll and leaked shells expire after the WinRM idle timeout; if other tools share the account, raise MaxShellsPerUser / MaxConcurrentOperationsPerUser"
	remedyAuth   = "check winrm.username and the password, that the auth method is enabled on the host (winrm get winrm/config/service/auth), and that the account may use WinRM (Remote Management Users)"
)

// classifyFault turns a WS-Management fault into an error wrapping a sentinel
// and the *Fault (errors.As gives the code).
func classifyFault(f *Fault) error {
	switch {
	case f.Code == codeAccessDenied || f.Code == codeAccessDeniedW32 || f.Subcode == "AccessDenied":
		return fmt.Errorf("%w: %w; %s", ErrAccessDenied, f, remedyAccess)
	case f.Code == codeMaxShells || f.Code == codeMaxOperations || f.Subcode == "QuotaLimit":
		return fmt.Errorf("%w: %w; %s", ErrQuota, f, remedyQuota)
	case f.Code == codeTimedOut || f.Subcode == "TimedOut":
		return fmt.Errorf("%w: %w", errOperationTimeout, f)
	case f.Code == codeInvalidSelectors || f.Subcode == "InvalidSelectors":
		return fmt.Errorf("%w: %w (the host dropped the shell: it may have been recycled or hit its idle timeout)", ErrShellNotFound, f)
	case f.Code == codeFilenameTooLong:
		return fmt.Errorf("%w: %w (the host's command-line limit is lower than expected)", ErrCommandTooLong, f)
	}
	return fmt.Errorf("%w: %w", ErrFault, f)
}

// classifyTransport maps an HTTP client error to a sentinel.
func classifyTransport(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctxError(ctx)
	}
	var (
		dnsErr  *net.DNSError
		opErr   *net.OpError
		certErr *tls.CertificateVerificationError
		hostErr x509.HostnameError
		unkErr  x509.UnknownAuthorityError
		invErr  x509.CertificateInvalidError
		recErr  tls.RecordHeaderError
		alert   tls.AlertError
		urlErr  *url.Error
	)
	switch {
	case errors.As(err, &dnsErr):
		return fmt.Errorf("%w: DNS: %v (check the host name and the resolver)", ErrUnreachable, err)
	case errors.As(err, &certErr), errors.As(err, &hostErr), errors.As(err, &unkErr), errors.As(err, &invErr):
		return fmt.Errorf("%w: TLS certificate: %v (set winrm.ca_file to the CA that issued the host's certificate, or winrm.tls_server_name)", ErrUnreachable, err)
	case errors.As(err, &recErr), errors.As(err, &alert):
		return fmt.Errorf("%w: TLS: %v (is the port an HTTPS listener? 5986 is HTTPS, 5985 is HTTP)", ErrUnreachable, err)
	case errors.As(err, &opErr) && opErr.Op == "dial":
		if opErr.Timeout() {
			return fmt.Errorf("%w: %w: connect: %v (a firewall may drop WinRM traffic)", ErrUnreachable, ErrTimeout, err)
		}
		return fmt.Errorf("%w: connect: %v (is WinRM listening? winrm quickconfig; firewall)", ErrUnreachable, err)
	case errors.As(err, &urlErr) && urlErr.Timeout():
		return fmt.Errorf("%w: %v", ErrTimeout, err)
	}
	return fmt.Errorf("%w: %v", ErrUnreachable, err)
}

// ctxError is the error for a context that ended: a passed deadline is
// ErrTimeout, a cancellation (shutdown) wraps context.Canceled.
func ctxError(ctx context.Context) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%w: the per-host deadline (winrm.timeout) passed: %w", ErrTimeout, context.DeadlineExceeded)
	}
	return fmt.Errorf("cancelled: %w", context.Cause(ctx))
}
