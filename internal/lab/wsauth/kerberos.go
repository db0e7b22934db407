package wsauth

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/jcmturner/gokrb5/v8/credentials"
	"github.com/jcmturner/gokrb5/v8/gssapi"
	"github.com/jcmturner/gokrb5/v8/service"
	"github.com/jcmturner/gokrb5/v8/spnego"
)

// gokrb5 stores the verified client in the token's context under this
// (untyped string) key.
const gokrb5CredentialsKey = "github.com/jcmturner/gokrb5/v8/ctxCredentials"

// serveKerberos verifies a Kerberos AP-REQ (bare or inside SPNEGO) with the
// service keytab. This goes as far as the SPNEGO token exchange: no AP-REP
// and no Kerberos message sealing.
func (a *Auth) serveKerberos(w http.ResponseWriter, r *http.Request, c *connContext, scheme string, st *spnego.SPNEGOToken, next http.Handler) {
	k := a.opts.Kerberos
	if k == nil {
		a.fail(w, r, c, MethodKerberos, "", errors.New("Kerberos is not enabled on this endpoint"))
		return
	}
	if k.Keytab == nil {
		discardBody(r)
		a.attempt(r, MethodKerberos, "", errors.New("Kerberos token received but no keytab is configured"))
		a.dropConn(c)
		w.Header().Set("WWW-Authenticate", "Negotiate "+base64.StdEncoding.EncodeToString(spnegoReject()))
		w.Header().Set("Server", "Microsoft-HTTPAPI/2.0")
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = fmt.Fprintln(w, "Kerberos is not available on this lab host: no keytab is configured; use NTLM or configure a keytab.")
		return
	}
	skew := k.MaxClockSkew
	if skew <= 0 {
		skew = 5 * time.Minute
	}
	settings := []func(*service.Settings){service.MaxClockSkew(skew), service.DecodePAC(false)}
	if k.ServicePrincipal != "" {
		settings = append(settings, service.KeytabPrincipal(k.ServicePrincipal))
	}
	svc := spnego.SPNEGOService(k.Keytab, settings...)
	var (
		ok     bool
		ctx    context.Context
		status gssapi.Status
	)
	if err := guard(func() error { ok, ctx, status = svc.AcceptSecContext(st); return nil }); err != nil {
		status = gssapi.Status{Code: gssapi.StatusDefectiveToken, Message: err.Error()}
		ok = false
	}
	if !ok || status.Code != gssapi.StatusComplete || ctx == nil {
		a.fail(w, r, c, MethodKerberos, "", fmt.Errorf("Kerberos AP-REQ refused: %s", status.Message))
		return
	}
	creds, _ := ctx.Value(gokrb5CredentialsKey).(*credentials.Credentials)
	if creds == nil {
		a.fail(w, r, c, MethodKerberos, "", errors.New("Kerberos context without credentials"))
		return
	}
	user := creds.UserName() + "@" + creds.Domain()
	if a.opts.Reject != nil && a.opts.Reject(user) {
		a.fail(w, r, c, MethodKerberos, user, errBadCredentials)
		return
	}
	a.attempt(r, MethodKerberos, user, nil)
	c.reset()
	c.user, c.method, c.scheme = user, MethodKerberos, scheme
	if scheme == "Negotiate" {
		w.Header().Set("WWW-Authenticate", "Negotiate "+base64.StdEncoding.EncodeToString(marshalNegTokenResp(spnego.NegTokenResp{
			NegState: 0, SupportedMech: gssapi.OIDKRB5.OID(),
		})))
	}
	a.serveAuthenticated(w, r, c, user, MethodKerberos, next)
}
