package wsauth

import (
	"errors"
	"fmt"
	"github.com/jcmturner/gofork/encoding/asn1"
	"net/http"

	"github.com/jcmturner/gokrb5/v8/gssapi"
	"github.com/jcmturner/gokrb5/v8/spnego"
)

// oidNTLM is NTLMSSP's mechanism OID inside SPNEGO.
var oidNTLM = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 2, 2, 10}

func isKerberosOID(o asn1.ObjectIdentifier) bool {
	return o.Equal(gssapi.OIDKRB5.OID()) || o.Equal(gssapi.OIDMSLegacyKRB5.OID())
}

// serveSPNEGO handles a token that is not raw NTLMSSP: an SPNEGO
// NegTokenInit/NegTokenResp carrying NTLM or Kerberos, or a raw Kerberos
// GSS token.
func (a *Auth) serveSPNEGO(w http.ResponseWriter, r *http.Request, c *connContext, scheme string, raw []byte, next http.Handler) {
	var st spnego.SPNEGOToken
	if err := guard(func() error { return st.Unmarshal(raw) }); err != nil {
		var k5 spnego.KRB5Token
		if guard(func() error { return k5.Unmarshal(raw) }) != nil {
			a.fail(w, r, c, "", "", fmt.Errorf("%s token is neither NTLMSSP, SPNEGO nor Kerberos: %v", scheme, err))
			return
		}
		st = spnego.SPNEGOToken{Init: true, NegTokenInit: spnego.NegTokenInit{
			MechTypes: []asn1.ObjectIdentifier{k5.OID}, MechTokenBytes: raw,
		}}
		a.serveKerberos(w, r, c, scheme, &st, next)
		return
	}
	switch {
	case st.Init && len(st.NegTokenInit.MechTypes) > 0 && st.NegTokenInit.MechTypes[0].Equal(oidNTLM):
		if a.opts.DisableNTLM || scheme != "Negotiate" {
			a.fail(w, r, c, MethodNTLM, "", errors.New("NTLM inside SPNEGO is not enabled"))
			return
		}
		mechTypes, err := asn1.Marshal(st.NegTokenInit.MechTypes)
		if err != nil {
			a.fail(w, r, c, MethodNTLM, "", fmt.Errorf("SPNEGO mechTypes: %w", err))
			return
		}
		a.serveNTLM(w, r, c, scheme, st.NegTokenInit.MechTokenBytes, true, next)
		if c.pending != nil {
			c.mechTypes = mechTypes
		}
	case st.Init && len(st.NegTokenInit.MechTypes) > 0 && isKerberosOID(st.NegTokenInit.MechTypes[0]):
		a.serveKerberos(w, r, c, scheme, &st, next)
	case st.Resp && c.pending != nil && c.spnego:
		c.clientMIC = st.NegTokenResp.MechListMIC
		a.serveNTLM(w, r, c, scheme, st.NegTokenResp.ResponseToken, true, next)
	default:
		a.fail(w, r, c, "", "", fmt.Errorf("SPNEGO token with no mechanism this server accepts"))
	}
}

// spnegoChallenge wraps an NTLM CHALLENGE in a NegTokenResp
// (accept-incomplete, NTLM selected).
func spnegoChallenge(challenge []byte) []byte {
	return marshalNegTokenResp(spnego.NegTokenResp{
		NegState: asn1.Enumerated(spnego.NegStateAcceptIncomplete), SupportedMech: oidNTLM, ResponseToken: challenge,
	})
}

// spnegoAccepted is the final NegTokenResp (accept-completed), with the
// server's mechListMIC when the client sent one.
func spnegoAccepted(mechListMIC []byte) []byte {
	return marshalNegTokenResp(spnego.NegTokenResp{
		NegState: asn1.Enumerated(spnego.NegStateAcceptCompleted), SupportedMech: oidNTLM, MechListMIC: mechListMIC,
	})
}

// spnegoMechListMIC checks the client's mechListMIC over the MechTypeList
// and returns the server's (MS-SPNG 3.2.5.1, RFC 4178 5). As in other
// SPNEGO/NTLM implementations, the NTLM crypto state (RC4 handles and
// sequence numbers) starts afresh afterwards; this has not been checked
// against a Windows capture.
func spnegoMechListMIC(c *connContext, flags uint32, exported []byte) ([]byte, error) {
	if len(c.clientMIC) == 0 || len(c.mechTypes) == 0 || c.session == nil {
		return nil, nil
	}
	if err := c.session.verify(c.mechTypes, c.clientMIC); err != nil {
		return nil, fmt.Errorf("%w (SPNEGO mechListMIC)", errBadCredentials)
	}
	mic := c.session.sign(c.mechTypes)
	c.session = newSealSession(flags, exported)
	return mic, nil
}

// spnegoReject is the NegTokenResp a server sends when it refuses the mechanism.
func spnegoReject() []byte {
	return marshalNegTokenResp(spnego.NegTokenResp{NegState: asn1.Enumerated(spnego.NegStateReject)})
}

func marshalNegTokenResp(t spnego.NegTokenResp) []byte {
	b, err := t.Marshal()
	if err != nil {
		// Fixed, well-formed values only: unreachable.
		panic("wsauth: marshal NegTokenResp: " + err.Error())
	}
	return b
}

// guard runs a third-party parser on untrusted input and turns a panic in
// it into an error, so a malformed token can never take the lab down.
func guard(f func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("token parser panicked: %v", p)
		}
	}()
	return f()
}
