package wsauth

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// maxTokenLen bounds a base64 Authorization token before decoding.
const maxTokenLen = 96 << 10

// Wrap returns a handler that authenticates every request before next sees
// it, unseals sealed requests and seals the answers to them.
func (a *Auth) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.serve(w, r, next)
	})
}

func (a *Auth) serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	r.Body = http.MaxBytesReader(w, r.Body, a.opts.MaxBodyBytes)
	c := a.conn(r)
	c.mu.Lock()
	defer c.mu.Unlock()

	authz := strings.TrimSpace(r.Header.Get("Authorization"))
	if authz == "" {
		if c.user == "" {
			a.unauthorized(w, r)
			return
		}
		a.serveAuthenticated(w, r, c, c.user, c.method, next)
		return
	}
	if strings.EqualFold(authz, CertificateAuthorization) {
		a.serveCertificate(w, r, c, next)
		return
	}
	scheme, token, _ := strings.Cut(authz, " ")
	token = strings.TrimSpace(token)
	switch {
	case strings.EqualFold(scheme, "Basic") && a.opts.Basic:
		a.serveBasic(w, r, c, token, next)
	case strings.EqualFold(scheme, "Negotiate") || strings.EqualFold(scheme, "NTLM") || strings.EqualFold(scheme, "Kerberos"):
		a.serveToken(w, r, c, canonicalScheme(scheme), token, next)
	default:
		a.attempt(r, "", "", fmt.Errorf("unsupported Authorization scheme %q", truncate([]byte(scheme))))
		a.dropConn(c)
		a.unauthorized(w, r)
	}
}

func canonicalScheme(s string) string {
	switch strings.ToLower(s) {
	case "ntlm":
		return "NTLM"
	case "kerberos":
		return "Kerberos"
	default:
		return "Negotiate"
	}
}

// serveToken handles the Negotiate, NTLM and Kerberos schemes.
func (a *Auth) serveToken(w http.ResponseWriter, r *http.Request, c *connContext, scheme, token string, next http.Handler) {
	if len(token) > maxTokenLen {
		a.fail(w, r, c, "", "", fmt.Errorf("%s token of %d bytes is too long", scheme, len(token)))
		return
	}
	raw, err := base64.StdEncoding.DecodeString(token)
	if err != nil || len(raw) == 0 {
		a.fail(w, r, c, "", "", fmt.Errorf("%s token is not base64", scheme))
		return
	}
	if messageType(raw) != 0 {
		if scheme == "Kerberos" || a.opts.DisableNTLM {
			a.fail(w, r, c, MethodNTLM, "", errors.New("NTLM is not enabled for this scheme"))
			return
		}
		a.serveNTLM(w, r, c, scheme, raw, false, next)
		return
	}
	a.serveSPNEGO(w, r, c, scheme, raw, next)
}

// serveNTLM runs one leg of the NTLM handshake.
func (a *Auth) serveNTLM(w http.ResponseWriter, r *http.Request, c *connContext, scheme string, msg []byte, spnego bool, next http.Handler) {
	switch messageType(msg) {
	case messageNegotiate:
		discardBody(r)
		c.reset()
		p, err := a.ntlmChallenge(msg)
		if err != nil {
			a.fail(w, r, c, MethodNTLM, "", err)
			return
		}
		p.overTLS = r.TLS != nil
		if p.overTLS && a.opts.ServerCertificate != nil {
			p.channelBinding = channelBindingHash(a.opts.ServerCertificate)
		}
		c.pending, c.scheme, c.spnego = p, scheme, spnego
		out := p.challenge
		if spnego {
			out = spnegoChallenge(p.challenge)
		}
		w.Header().Set("WWW-Authenticate", scheme+" "+base64.StdEncoding.EncodeToString(out))
		writeEmpty(w, http.StatusUnauthorized)
	case messageAuthenticate:
		if c.pending == nil {
			a.fail(w, r, c, MethodNTLM, "", errors.New("AUTHENTICATE without a preceding NEGOTIATE on this connection"))
			return
		}
		p := c.pending
		c.pending = nil
		res, err := a.ntlmVerify(p, msg)
		if err != nil {
			a.fail(w, r, c, MethodNTLM, "", err)
			return
		}
		if res.Flags&(flagSeal|flagSign) != 0 {
			c.session = newSealSession(res.Flags, res.Exported)
		}
		if spnego {
			mic, err := spnegoMechListMIC(c, res.Flags, res.Exported)
			if err != nil {
				a.fail(w, r, c, MethodNTLM, res.User, err)
				return
			}
			w.Header().Set("WWW-Authenticate", scheme+" "+base64.StdEncoding.EncodeToString(spnegoAccepted(mic)))
		}
		a.attempt(r, MethodNTLM, res.User, nil)
		c.user, c.method = res.User, MethodNTLM
		a.serveAuthenticated(w, r, c, c.user, c.method, next)
	default:
		a.fail(w, r, c, MethodNTLM, "", fmt.Errorf("%w: unexpected message type %d", errMalformed, messageType(msg)))
	}
}

// serveAuthenticated passes the request of an authenticated connection (or
// Basic / certificate request) to next, unsealing and sealing as needed.
func (a *Auth) serveAuthenticated(w http.ResponseWriter, r *http.Request, c *connContext, user, method string, next http.Handler) {
	ctx := context.WithValue(r.Context(), userKey, user)
	ctx = context.WithValue(ctx, methodKey, method)
	r = r.WithContext(ctx)

	if isEncryptedContentType(r.Header.Get("Content-Type")) {
		a.serveSealed(w, r, c, next)
		return
	}
	empty := bodyIsEmpty(r)
	if r.TLS == nil && a.opts.RequireSealing && !empty {
		// Windows with AllowUnencrypted=false: unencrypted SOAP over HTTP is
		// refused with 401 and the logon has to start again.
		discardBody(r)
		a.attempt(r, method, user, errors.New("unencrypted message refused on an HTTP listener that requires sealing"))
		a.dropConn(c)
		a.unauthorized(w, r)
		return
	}
	if empty && r.Method == http.MethodPost {
		// The empty POST that ends a handshake (pywinrm, winrs): 200, no body.
		writeEmpty(w, http.StatusOK)
		return
	}
	next.ServeHTTP(w, r)
}

// serveSealed unseals a multipart/encrypted request, runs next on the
// plaintext and seals its answer.
func (a *Auth) serveSealed(w http.ResponseWriter, r *http.Request, c *connContext, next http.Handler) {
	if c.session == nil {
		discardBody(r)
		a.opts.Logger.Info("wsauth: sealed request without an NTLM session", "remote", r.RemoteAddr, "method", Method(r.Context()))
		writeEmpty(w, http.StatusBadRequest)
		return
	}
	plain, origType, err := a.unsealRequest(r, c.session)
	if err != nil {
		// Windows answers a sealed message it cannot frame or verify with
		// 400 Bad Request and closes the connection, losing the context.
		a.opts.Logger.Info("wsauth: sealed request rejected", "remote", r.RemoteAddr, "user", c.user, "err", err)
		a.dropConn(c)
		w.Header().Set("Connection", "close")
		writeEmpty(w, http.StatusBadRequest)
		return
	}
	r2 := r.Clone(r.Context())
	r2.Body = io.NopCloser(bytes.NewReader(plain))
	r2.ContentLength = int64(len(plain))
	r2.Header.Set("Content-Type", origType)
	r2.Header.Set("Content-Length", strconv.Itoa(len(plain)))

	bw := &bufferedWriter{header: http.Header{}}
	next.ServeHTTP(bw, r2)

	for k, v := range bw.header {
		if !strings.EqualFold(k, "Content-Length") && !strings.EqualFold(k, "Content-Type") {
			w.Header()[k] = v
		}
	}
	status := bw.status
	if status == 0 {
		status = http.StatusOK
	}
	if bw.body.Len() == 0 {
		writeEmpty(w, status)
		return
	}
	respType := bw.header.Get("Content-Type")
	if respType == "" {
		respType = soapContentType
	}
	sealed, sig := c.session.seal(bw.body.Bytes())
	out := appendEncryptedPart(nil, respType, bw.body.Len(), sealedPayload(sig, sealed))
	out = closeEncrypted(out)
	w.Header().Set("Content-Type", EncryptedContentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(out)))
	w.WriteHeader(status)
	_, _ = w.Write(out)
}

func (a *Auth) unsealRequest(r *http.Request, s *sealSession) ([]byte, string, error) {
	if err := checkEncryptedContentType(r.Header.Get("Content-Type")); err != nil {
		return nil, "", err
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, "", fmt.Errorf("read sealed body: %w", err)
	}
	parts, err := parseEncrypted(body)
	if err != nil {
		return nil, "", err
	}
	var plain []byte
	for _, p := range parts {
		m, err := s.unseal(p.Sealed, p.Signature)
		if err != nil {
			return nil, "", err
		}
		plain = append(plain, m...)
	}
	return plain, parts[0].OriginalType, nil
}

// unauthorized starts (or restarts) authentication: 401 with every scheme
// this endpoint offers.
func (a *Auth) unauthorized(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	if !a.opts.DisableNTLM || a.opts.Kerberos != nil {
		h.Add("WWW-Authenticate", "Negotiate")
	}
	if a.opts.Kerberos != nil {
		h.Add("WWW-Authenticate", "Kerberos")
	}
	if a.opts.Basic && (r.TLS != nil || a.opts.BasicOverHTTP) {
		h.Add("WWW-Authenticate", `Basic realm="WSMAN"`)
	}
	writeEmpty(w, http.StatusUnauthorized)
}

// fail ends a failed authentication leg: the context is dropped and the
// client gets the same 401 whatever went wrong.
func (a *Auth) fail(w http.ResponseWriter, r *http.Request, c *connContext, method, user string, err error) {
	discardBody(r)
	a.attempt(r, method, user, err)
	a.dropConn(c)
	a.unauthorized(w, r)
}

func writeEmpty(w http.ResponseWriter, status int) {
	w.Header().Set("Server", "Microsoft-HTTPAPI/2.0")
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(status)
}

// bodyIsEmpty reports whether the request has no body, peeking one byte
// when the length is unknown (chunked) and putting it back.
func bodyIsEmpty(r *http.Request) bool {
	if r.ContentLength >= 0 || r.Body == nil {
		return r.ContentLength == 0
	}
	var one [1]byte
	n, _ := io.ReadFull(r.Body, one[:])
	if n == 0 {
		return true
	}
	r.Body = readCloser{io.MultiReader(bytes.NewReader(one[:n]), r.Body), r.Body}
	return false
}

type readCloser struct {
	io.Reader
	io.Closer
}

// discardBody drains a (bounded) request body so the connection stays usable.
func discardBody(r *http.Request) {
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
	}
}

// bufferedWriter captures the wrapped handler's answer so it can be sealed.
type bufferedWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedWriter) Header() http.Header { return b.header }

func (b *bufferedWriter) WriteHeader(status int) {
	if b.status == 0 {
		b.status = status
	}
}

func (b *bufferedWriter) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.body.Write(p)
}
