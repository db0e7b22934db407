package ntlmtransport

import (
	"errors"
	"fmt"
)

// Errors a caller can test with errors.Is; each is wrapped with the host and
// the step that failed.
var (
	// ErrAuth: the server rejected the credentials or does not offer NTLM.
	// Retrying soon will not help; check the account, its password and
	// that NTLM is allowed for WinRM on the host.
	ErrAuth = errors.New("NTLM authentication failed")
	// ErrConnect: DNS, TCP or TLS failed before any HTTP exchange.
	ErrConnect = errors.New("cannot connect")
	// ErrTimeout: the request deadline passed. It also matches context.DeadlineExceeded.
	ErrTimeout = errors.New("timed out")
	// ErrProtocol: the server's answer is malformed, unsigned, not encrypted
	// when it must be, or fails signature verification.
	ErrProtocol = errors.New("protocol error")
	// ErrNotEncrypted: the server answered in plaintext on a sealed session;
	// the answer is discarded, never used. Also matches ErrProtocol.
	ErrNotEncrypted = fmt.Errorf("%w: reply is not NTLM-encrypted", ErrProtocol)
	// ErrResponseTooLarge: the response exceeded Options.MaxResponseBytes.
	ErrResponseTooLarge = errors.New("response too large")
)

// HTTPError is a non-2xx answer. Body is the (decrypted) SOAP body when there
// is one, so a WS-Management fault can be parsed from it. Its message has the
// form masterzen/winrm's own transport uses ("http error 500: <body>"), which
// the library relies on to recognise an OperationTimeout fault while receiving.
type HTTPError struct {
	StatusCode int
	Body       string
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("http error %d: %s", e.StatusCode, e.Body)
}
