package ntlmtransport

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/svcwatch/svcwatch/internal/ntlm"
)

// maxHandshakeBody bounds the body of a 401 or of the final handshake answer.
const maxHandshakeBody = 64 << 10

// maxHeaderBytes bounds the status line and headers of a response.
const maxHeaderBytes = 64 << 10

// readers and writers are the exchange buffers, shared by all connections:
// an idle connection holds none (thousands of hosts are kept alive).
var (
	readers = sync.Pool{New: func() any { return bufio.NewReader(nil) }}
	writers = sync.Pool{New: func() any { return bufio.NewWriter(nil) }}
)

// errTrailingData: the server sent bytes after a complete handshake
// response (after any other response, the connection is dropped instead).
var errTrailingData = errors.New("the server sent data after the response")

// conn is one TCP (or TLS) connection with its NTLM security context.
type conn struct {
	nc       net.Conn
	cr       *countingReader
	sess     *ntlm.Session // nil when not sealing
	cbt      []byte        // MsvAvChannelBindings for a TLS connection
	lastUsed time.Time
	idle     *time.Timer // closes the connection after IdleTimeout unused (see armIdle)
	// large: a response body larger than Options.LargeResponse came over
	// this connection; it is closed after LargeIdleTimeout unused.
	large bool
}

// countingReader counts response bytes and refuses to read past a limit, so a
// hostile server cannot make us buffer an endless header.
type countingReader struct {
	r     io.Reader
	n     int64
	limit int64
}

var errReadLimit = errors.New("read limit reached")

func (c *countingReader) Read(p []byte) (int, error) {
	if c.n >= c.limit {
		return 0, errReadLimit
	}
	if rem := c.limit - c.n; int64(len(p)) > rem {
		p = p[:rem]
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func (c *conn) close() { _ = c.nc.Close() }

// aLongTimeAgo is a deadline in the past, used to abort blocked I/O.
var aLongTimeAgo = time.Unix(1, 0)

// result of one HTTP exchange on a conn.
type exchangeResult struct {
	resp *http.Response
	body []byte
	// outOfStep: bytes followed the response; it stands, the connection
	// does not (they would be read as the next answer).
	outOfStep bool
}

// exchange writes req and reads the response with its body (at most
// maxBody bytes). Any error leaves the connection unusable; received reports whether
// any response byte arrived (for the retry decision).
func (c *conn) exchange(ctx context.Context, req *http.Request, maxBody, largeResponse int64) (res exchangeResult, received bool, err error) {
	if dl, ok := ctx.Deadline(); ok {
		_ = c.nc.SetDeadline(dl)
	} else {
		_ = c.nc.SetDeadline(time.Time{})
	}
	stop := context.AfterFunc(ctx, func() { _ = c.nc.SetDeadline(aLongTimeAgo) })
	defer func() {
		if !stop() && err == nil {
			err = context.Cause(ctx) // fired: the deadline may be poisoned
		}
	}()
	c.cr.n = 0
	c.cr.limit = maxHeaderBytes + maxBody + 1
	bw := writers.Get().(*bufio.Writer)
	bw.Reset(c.nc)
	err = req.Write(bw)
	if err == nil {
		err = bw.Flush()
	}
	bw.Reset(nil)
	writers.Put(bw)
	if err != nil {
		return res, false, err
	}
	br := readers.Get().(*bufio.Reader)
	br.Reset(c.cr)
	defer func() {
		res.outOfStep = err == nil && br.Buffered() > 0
		br.Reset(nil)
		readers.Put(br)
	}()
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		if errors.Is(err, errReadLimit) {
			err = fmt.Errorf("%w: response headers exceed %d bytes", ErrResponseTooLarge, maxHeaderBytes)
		}
		return res, c.cr.n > 0, err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	_ = resp.Body.Close()
	if errors.Is(err, errReadLimit) || int64(len(body)) > maxBody {
		return res, true, fmt.Errorf("%w: body exceeds %d bytes (discarded)", ErrResponseTooLarge, maxBody)
	}
	if err != nil {
		return res, true, err
	}
	c.lastUsed = time.Now()
	if int64(len(body)) > largeResponse {
		c.large = true
	}
	return exchangeResult{resp: resp, body: body}, true, nil
}

// roundTrip sends one SOAP message, authenticating a connection first when
// needed, and retries once on a fresh connection when a reused one turns out
// to be dead or no longer authenticated.
func (t *Transport) roundTrip(ctx context.Context, msg []byte) ([]byte, error) {
	t.mu.Lock()
	ep, closed := t.ep, t.closed
	t.mu.Unlock()
	if closed {
		return nil, errors.New("ntlmtransport: transport is closed")
	}
	if ep == nil {
		return nil, errors.New("ntlmtransport: no endpoint: create the masterzen client with this transport as TransportDecorator")
	}
	ctx, cancel := context.WithTimeout(ctx, ep.timeout)
	defer cancel()

	select {
	case t.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, t.wrap(ctx, ep, "wait for the connection", ctx.Err())
	}
	defer func() { <-t.sem }()

	for attempt := 0; ; attempt++ {
		c, fresh, err := t.connection(ctx, ep)
		if err != nil {
			return nil, err
		}
		out, retry, err := t.send(ctx, ep, c, msg)
		t.armIdle(c)
		if err == nil {
			return out, nil
		}
		if retry && !fresh && attempt == 0 && ctx.Err() == nil {
			continue
		}
		return nil, err
	}
}

// connection returns the authenticated connection, dialling and
// authenticating a new one when there is none or it sat idle too long.
func (t *Transport) connection(ctx context.Context, ep *endpoint) (*conn, bool, error) {
	t.mu.Lock()
	c := t.conn
	if c != nil && time.Since(c.lastUsed) > t.idleTimeout(c) {
		c.close()
		t.conn, c = nil, nil
	}
	scheme := t.scheme
	t.mu.Unlock()
	if c != nil {
		return c, false, nil
	}
	c, err := t.dial(ctx, ep)
	if err != nil {
		return nil, false, err
	}
	err = t.authenticate(ctx, ep, c, scheme)
	var only *ntlmOnly
	if errors.As(err, &only) {
		// The server offers "NTLM" but not "Negotiate": start again with it.
		c.close()
		t.mu.Lock()
		t.scheme = "NTLM"
		t.mu.Unlock()
		if c, err = t.dial(ctx, ep); err != nil {
			return nil, false, err
		}
		err = t.authenticate(ctx, ep, c, "NTLM")
	}
	if err != nil {
		c.close()
		return nil, false, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		c.close()
		return nil, false, errors.New("ntlmtransport: transport is closed")
	}
	t.conn = c
	return c, true, nil
}

// armIdle (re)starts c's idle timer: a connection nobody uses for
// IdleTimeout is closed then, not when the next request finds it stale, so
// hosts polled less often than that, or no longer polled at all, do not each
// hold a socket open.
func (t *Transport) armIdle(c *conn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.conn != c {
		return // dropped already
	}
	if c.idle == nil {
		c.idle = time.AfterFunc(t.idleTimeout(c), func() { t.closeIdle(c) })
		return
	}
	c.idle.Reset(t.idleTimeout(c))
}

// idleTimeout is how long c may sit unused. c.large is written only under
// t.sem (by exchange), and every caller holds t.sem.
func (t *Transport) idleTimeout(c *conn) time.Duration {
	if c.large {
		return min(t.opts.LargeIdleTimeout, t.opts.IdleTimeout)
	}
	return t.opts.IdleTimeout
}

// closeIdle closes c if it is still the current connection, not in use and
// idle for IdleTimeout. A request in flight re-arms the timer when it ends.
func (t *Transport) closeIdle(c *conn) {
	select {
	case t.sem <- struct{}{}:
		defer func() { <-t.sem }()
	default:
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.conn == c && time.Since(c.lastUsed) >= t.idleTimeout(c) {
		t.conn = nil
		c.close()
	}
}

// drop forgets c (if it is still the current connection) and closes it.
func (t *Transport) drop(c *conn) {
	t.mu.Lock()
	if t.conn == c {
		t.conn = nil
	}
	t.mu.Unlock()
	c.close()
}

func (t *Transport) dial(ctx context.Context, ep *endpoint) (*conn, error) {
	dctx, cancel := context.WithTimeout(ctx, t.opts.DialTimeout)
	defer cancel()
	nc, err := t.opts.Dial(dctx, "tcp", ep.addr)
	if err != nil {
		return nil, t.wrapConnect(ctx, ep, "connect", err)
	}
	if ep.https {
		tc := tls.Client(nc, ep.tls)
		if err := tc.HandshakeContext(dctx); err != nil {
			_ = nc.Close()
			return nil, t.wrapConnect(ctx, ep, "TLS handshake", err)
		}
		nc = tc
	}
	cr := &countingReader{r: nc}
	c := &conn{nc: nc, cr: cr, lastUsed: time.Now()}
	if tc, ok := nc.(*tls.Conn); ok {
		if certs := tc.ConnectionState().PeerCertificates; len(certs) > 0 {
			c.cbt = ntlm.ChannelBindingHash(ntlm.TLSServerEndPoint(certs[0]))
		}
	}
	return c, nil
}

// ntlmOnly reports a server that offers the NTLM scheme but not Negotiate.
type ntlmOnly struct{}

func (*ntlmOnly) Error() string { return "server offers NTLM, not Negotiate" }

// authenticate runs NEGOTIATE / CHALLENGE / AUTHENTICATE on c with empty
// bodies (as pywinrm and winrs do), leaving c with its security context.
func (t *Transport) authenticate(ctx context.Context, ep *endpoint, c *conn, scheme string) error {
	domain, user := ntlm.SplitAccount(t.opts.Username)
	nopts := t.opts.NTLM
	if t.opts.ChannelBinding && c.cbt != nil {
		nopts.ChannelBindings = c.cbt
	}
	client := ntlm.NewClient(domain, user, t.opts.Password, nopts)

	res, _, err := c.exchange(ctx, t.request(ep, scheme, client.Negotiate(), nil), maxHandshakeBody, t.opts.LargeResponse)
	if err != nil {
		return t.wrap(ctx, ep, "NTLM negotiate", err)
	}
	if res.outOfStep {
		return t.fail(ep, "NTLM negotiate", fmt.Errorf("%w: %w", ErrProtocol, errTrailingData))
	}
	if res.resp.StatusCode != http.StatusUnauthorized {
		return t.fail(ep, "NTLM negotiate", fmt.Errorf("%w: HTTP %d instead of a 401 challenge; refusing an endpoint that does not authenticate", ErrAuth, res.resp.StatusCode))
	}
	offered, token, err := challengeToken(res.resp.Header.Values("WWW-Authenticate"), scheme)
	if err != nil {
		return t.fail(ep, "NTLM negotiate", fmt.Errorf("%w: %v", ErrProtocol, err))
	}
	if token == nil {
		if scheme == "Negotiate" && containsFold(offered, "NTLM") {
			return &ntlmOnly{}
		}
		return t.fail(ep, "NTLM negotiate", fmt.Errorf("%w: the server offers %s, not NTLM; enable Negotiate/NTLM for WinRM (winrm set winrm/config/service/auth @{Negotiate=\"true\"})", ErrAuth, describe(offered)))
	}
	if res.resp.Close {
		return t.fail(ep, "NTLM negotiate", fmt.Errorf("%w: the server closed the connection after its challenge", ErrProtocol))
	}
	auth, err := client.Authenticate(token)
	if err != nil {
		if errors.Is(err, ntlm.ErrInvalidMessage) {
			err = fmt.Errorf("%w: %w", ErrProtocol, err)
		} else {
			err = fmt.Errorf("%w: %w", ErrAuth, err)
		}
		return t.fail(ep, "NTLM challenge", err)
	}
	sess := client.Session()
	if ep.seal && !sess.Flags().Has(ntlm.FlagSeal|ntlm.FlagSign) {
		return t.fail(ep, "NTLM challenge", fmt.Errorf("%w: the server did not agree to NTLM signing and sealing (flags %v)", ErrAuth, sess.Flags()))
	}
	res, _, err = c.exchange(ctx, t.request(ep, scheme, auth, nil), maxHandshakeBody, t.opts.LargeResponse)
	if err != nil {
		return t.wrap(ctx, ep, "NTLM authenticate", err)
	}
	if res.outOfStep {
		return t.fail(ep, "NTLM authenticate", fmt.Errorf("%w: %w", ErrProtocol, errTrailingData))
	}
	switch code := res.resp.StatusCode; {
	case code == http.StatusUnauthorized:
		return t.fail(ep, "NTLM authenticate", fmt.Errorf("%w: the server rejected the credentials of %s (HTTP 401); check winrm.username and the password, and that the account is not locked", ErrAuth, t.opts.Username))
	case code < 200 || code > 299:
		return t.fail(ep, "NTLM authenticate", fmt.Errorf("%w: HTTP %d after AUTHENTICATE", ErrAuth, code))
	}
	if res.resp.Close {
		return t.fail(ep, "NTLM authenticate", fmt.Errorf("%w: the server closed the connection after authenticating it", ErrProtocol))
	}
	if ep.seal {
		c.sess = sess
	}
	return nil
}

// request builds a POST; with a token it carries "Authorization: scheme token".
func (t *Transport) request(ep *endpoint, scheme string, token, body []byte) *http.Request {
	u, _ := url.Parse(ep.url) // built from validated host and port
	req := &http.Request{
		Method:     http.MethodPost,
		URL:        u,
		Host:       u.Host,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     http.Header{},
	}
	req.Header.Set("User-Agent", t.opts.UserAgent)
	if token != nil {
		req.Header.Set("Authorization", scheme+" "+base64.StdEncoding.EncodeToString(token))
	}
	if body != nil {
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.ContentLength = int64(len(body))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	} else {
		req.Header.Set("Content-Type", SOAPContentType)
	}
	return req
}

// send seals (when sealing) and posts msg on the authenticated c. retry is
// true when the failure says the reused connection or its context was gone
// before the server processed anything.
func (t *Transport) send(ctx context.Context, ep *endpoint, c *conn, msg []byte) (out []byte, retry bool, err error) {
	body, contentType := msg, SOAPContentType
	if c.sess != nil {
		sig, sealed := c.sess.Seal(msg)
		body, contentType = EncodeEncrypted(EncryptedPart{Signature: sig, Sealed: sealed}), ContentType
	}
	req := t.request(ep, "", nil, body)
	req.Header.Set("Content-Type", contentType)
	res, received, err := c.exchange(ctx, req, t.opts.MaxResponseBytes, t.opts.LargeResponse)
	if err != nil {
		t.drop(c)
		return nil, !received && !isTimeout(err), t.wrap(ctx, ep, "send", err)
	}
	if res.resp.Close || res.outOfStep {
		t.drop(c)
	}
	code := res.resp.StatusCode
	if code == http.StatusUnauthorized {
		// The server no longer knows this connection's context.
		t.drop(c)
		hint := ""
		if c.sess == nil && !ep.https {
			hint = "; an http listener with AllowUnencrypted=false refuses unsealed messages: leave sealing on or use https"
		}
		return nil, true, t.fail(ep, "send", fmt.Errorf("%w: HTTP 401 on an authenticated connection%s", ErrAuth, hint))
	}
	if c.sess == nil {
		return t.plainAnswer(ep, res)
	}
	plain, err := t.unseal(c, res)
	if err != nil {
		t.drop(c)
		return nil, false, t.fail(ep, "receive", err)
	}
	if code < 200 || code > 299 {
		return nil, false, t.fail(ep, "receive", &HTTPError{StatusCode: code, Body: string(plain)})
	}
	return plain, false, nil
}

// unseal decrypts and verifies a sealed answer. An unencrypted answer is an
// error whatever its status: it is never passed on.
func (t *Transport) unseal(c *conn, res exchangeResult) ([]byte, error) {
	ct := res.resp.Header.Get("Content-Type")
	if !strings.HasPrefix(strings.ToLower(strings.TrimSpace(ct)), "multipart/encrypted") {
		// Not an *HTTPError even for a fault status: nothing unencrypted is
		// handed on as the server's answer. A short printable excerpt helps
		// diagnose an HTTP.sys error page.
		return nil, fmt.Errorf("%w (HTTP %d, Content-Type %q, %d bytes discarded: %q)",
			ErrNotEncrypted, res.resp.StatusCode, ct, len(res.body), printable(res.body, 120))
	}
	if err := CheckContentType(ct); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrProtocol, err)
	}
	parts, err := DecodeEncrypted(res.body)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrProtocol, err)
	}
	var plain []byte
	for _, p := range parts {
		m, err := c.sess.Unseal(p.Signature, p.Sealed)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrProtocol, err)
		}
		plain = append(plain, m...)
	}
	return plain, nil
}

// plainAnswer handles an answer on an unsealed (https) session.
func (t *Transport) plainAnswer(ep *endpoint, res exchangeResult) ([]byte, bool, error) {
	code := res.resp.StatusCode
	if code < 200 || code > 299 {
		return nil, false, t.fail(ep, "receive", &HTTPError{StatusCode: code, Body: string(res.body)})
	}
	if ct := res.resp.Header.Get("Content-Type"); !strings.Contains(strings.ToLower(ct), "application/soap+xml") {
		return nil, false, t.fail(ep, "receive", fmt.Errorf("%w: HTTP %d with Content-Type %q, want application/soap+xml", ErrProtocol, code, ct))
	}
	return res.body, false, nil
}

func (t *Transport) fail(ep *endpoint, step string, err error) error {
	return fmt.Errorf("%s: %s: %w", ep.addr, step, err)
}

// wrap turns an I/O error into an error that says whether the deadline or a
// cancellation caused it. It never returns a *url.Error: masterzen retries a
// Receive forever on a url.Error that is a timeout.
func (t *Transport) wrap(ctx context.Context, ep *endpoint, step string, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	switch cerr := ctx.Err(); {
	case cerr != nil && !errors.Is(cerr, context.DeadlineExceeded):
		return t.fail(ep, step, context.Cause(ctx)) // cancelled
	case cerr != nil || isTimeout(err):
		return t.fail(ep, step, fmt.Errorf("%w (request timeout %s or the caller's deadline): %w", ErrTimeout, ep.timeout, context.DeadlineExceeded))
	}
	return t.fail(ep, step, err)
}

func (t *Transport) wrapConnect(ctx context.Context, ep *endpoint, step string, err error) error {
	if ctx.Err() != nil || isTimeout(err) {
		return t.wrap(ctx, ep, step, err)
	}
	return t.fail(ep, step, fmt.Errorf("%w: %w", ErrConnect, err))
}

func isTimeout(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// challengeToken finds the token for scheme among WWW-Authenticate values
// ("Negotiate", "Negotiate <base64>", "NTLM", or comma-separated lists).
func challengeToken(values []string, scheme string) (offered []string, token []byte, err error) {
	for _, v := range values {
		for _, item := range strings.Split(v, ",") {
			f := strings.Fields(item)
			if len(f) == 0 {
				continue
			}
			offered = append(offered, f[0])
			if !strings.EqualFold(f[0], scheme) || len(f) < 2 {
				continue
			}
			if len(f[1]) > maxHandshakeBody {
				return offered, nil, fmt.Errorf("%s challenge of %d characters is too long", scheme, len(f[1]))
			}
			tok, err := base64.StdEncoding.DecodeString(f[1])
			if err != nil {
				return offered, nil, fmt.Errorf("%s challenge is not base64: %v", scheme, err)
			}
			token = tok
		}
	}
	return offered, token, nil
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

func describe(offered []string) string {
	if len(offered) == 0 {
		return "no authentication scheme"
	}
	return strconv.Quote(strings.Join(offered, ", "))
}

// printable keeps at most n bytes of printable ASCII for an error message.
func printable(b []byte, n int) string {
	var s strings.Builder
	for _, c := range b {
		if s.Len() >= n {
			s.WriteString("…")
			break
		}
		if c >= 0x20 && c < 0x7f {
			s.WriteByte(c)
		} else {
			s.WriteByte('.')
		}
	}
	return s.String()
}
