package wsauth

import (
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// serveBasic authenticates one request with Basic credentials. Basic is
// stateless: every request carries them, nothing is kept on the connection.
func (a *Auth) serveBasic(w http.ResponseWriter, r *http.Request, c *connContext, token string, next http.Handler) {
	if r.TLS == nil && !a.opts.BasicOverHTTP {
		a.fail(w, r, c, MethodBasic, "", errors.New("Basic authentication refused without TLS"))
		return
	}
	raw, err := base64.StdEncoding.DecodeString(token)
	if err != nil {
		a.fail(w, r, c, MethodBasic, "", errors.New("Basic token is not base64"))
		return
	}
	name, password, ok := strings.Cut(string(raw), ":")
	if !ok {
		a.fail(w, r, c, MethodBasic, "", errors.New("Basic token has no colon"))
		return
	}
	key, ok := a.checkPassword(name, password)
	if !ok {
		a.fail(w, r, c, MethodBasic, name, errBadCredentials)
		return
	}
	a.attempt(r, MethodBasic, key, nil)
	a.serveAuthenticated(w, r, c, key, MethodBasic, next)
}

// checkPassword matches a Basic user name in any of the accepted forms and
// compares the password in constant time.
func (a *Auth) checkPassword(name, password string) (string, bool) {
	var key, want string
	var found bool
	if dom, user, ok := strings.Cut(name, `\`); ok {
		key, want, found = a.lookupNTLM(user, dom)
	} else {
		key, want, found = a.lookupNTLM(name, "")
	}
	if !found {
		// Same work as a real comparison so timing does not tell users apart.
		subtle.ConstantTimeCompare([]byte(password), []byte(password))
		return "", false
	}
	if a.opts.Reject != nil && a.opts.Reject(key) {
		return "", false
	}
	if subtle.ConstantTimeCompare([]byte(want), []byte(password)) != 1 {
		return "", false
	}
	return key, true
}

// serveCertificate maps the TLS client certificate to a user.
func (a *Auth) serveCertificate(w http.ResponseWriter, r *http.Request, c *connContext, next http.Handler) {
	user, err := a.certificateUser(r)
	if err != nil {
		a.fail(w, r, c, MethodCertificate, "", err)
		return
	}
	a.attempt(r, MethodCertificate, user, nil)
	a.serveAuthenticated(w, r, c, user, MethodCertificate, next)
}

func (a *Auth) certificateUser(r *http.Request) (string, error) {
	if a.opts.Certificates == nil {
		return "", errors.New("certificate authentication is not enabled")
	}
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return "", errors.New("no client certificate on the TLS connection")
	}
	leaf := r.TLS.PeerCertificates[0]
	if a.opts.ClientCAs != nil {
		inter := x509.NewCertPool()
		for _, ic := range r.TLS.PeerCertificates[1:] {
			inter.AddCert(ic)
		}
		_, err := leaf.Verify(x509.VerifyOptions{
			Roots: a.opts.ClientCAs, Intermediates: inter, CurrentTime: a.opts.Now(),
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		})
		if err != nil {
			return "", fmt.Errorf("client certificate %q does not verify: %w", leaf.Subject.CommonName, err)
		}
	} else if len(r.TLS.VerifiedChains) == 0 {
		return "", fmt.Errorf("client certificate %q was not verified by the TLS layer (set ClientCAs or tls.VerifyClientCertIfGiven)", leaf.Subject.CommonName)
	}
	user, ok := a.certUsers[strings.ToLower(leaf.Subject.CommonName)]
	if !ok {
		return "", fmt.Errorf("client certificate %q is not mapped to a user", leaf.Subject.CommonName)
	}
	return user, nil
}
