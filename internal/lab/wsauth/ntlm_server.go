package wsauth

// The accepting side of the NTLM handshake (MS-NLMP 3.2.5): answer a
// NEGOTIATE with a CHALLENGE, verify the NTLMv2 AUTHENTICATE.

import (
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"
)

// errBadCredentials is every authentication failure as the client sees it:
// unknown user, wrong password, bad MIC. The log may say more; the wire never.
var errBadCredentials = errors.New("the user name or password is incorrect")

// pendingNTLM is the state between CHALLENGE and AUTHENTICATE on a connection.
type pendingNTLM struct {
	negotiate       []byte
	challenge       []byte
	serverChallenge [8]byte
	flags           uint32
	// overTLS is set when the handshake runs over TLS; channelBinding is
	// then the expected MsvAvChannelBindings, if the certificate is known.
	overTLS        bool
	channelBinding []byte
}

// ntlmChallenge answers a NEGOTIATE_MESSAGE.
func (a *Auth) ntlmChallenge(negotiate []byte) (*pendingNTLM, error) {
	nm, err := parseNegotiate(negotiate)
	if err != nil {
		return nil, err
	}
	p := &pendingNTLM{negotiate: append([]byte(nil), negotiate...), flags: challengeFlags(nm.Flags)}
	if _, err := io.ReadFull(a.opts.Rand, p.serverChallenge[:]); err != nil {
		return nil, fmt.Errorf("server challenge: %w", err)
	}
	p.challenge = buildChallenge(challengeParams{
		Flags:           p.flags,
		ServerChallenge: p.serverChallenge,
		TargetName:      a.opts.Domain,
		TargetInfo:      buildTargetInfo(a.opts.Domain, a.opts.ServerName, a.opts.DNSDomain, a.dnsComputer, a.opts.Now()),
	})
	return p, nil
}

// ntlmResult is a verified AUTHENTICATE_MESSAGE.
type ntlmResult struct {
	User     string // the Users key that matched
	Flags    uint32
	Exported []byte
}

// ntlmVerify checks an AUTHENTICATE_MESSAGE against the pending challenge.
func (a *Auth) ntlmVerify(p *pendingNTLM, raw []byte) (ntlmResult, error) {
	m, err := parseAuthenticate(raw)
	if err != nil {
		return ntlmResult{}, err
	}
	key, password, ok := a.lookupNTLM(m.User, m.Domain)
	if !ok {
		return ntlmResult{}, fmt.Errorf("%w (no such user %q in domain %q)", errBadCredentials, m.User, m.Domain)
	}
	if a.opts.Reject != nil && a.opts.Reject(key) {
		return ntlmResult{}, fmt.Errorf("%w (user %q rejected by the lab)", errBadCredentials, key)
	}
	exported, err := verifyNTLMv2(m, password, p.serverChallenge[:])
	if err != nil {
		return ntlmResult{}, err
	}
	if err := checkMIC(m, exported, p); err != nil {
		return ntlmResult{}, err
	}
	if err := a.checkChannelBinding(m, p); err != nil {
		return ntlmResult{}, err
	}
	return ntlmResult{User: key, Flags: m.Flags & p.flags, Exported: exported}, nil
}

// verifyNTLMv2 recomputes NTProofStr from the stored password and returns the
// ExportedSessionKey. It refuses anonymous and NTLMv1 logons.
func verifyNTLMv2(m authenticateMessage, password string, serverChallenge []byte) ([]byte, error) {
	if m.Flags&flagAnonymous != 0 || (m.User == "" && len(m.NTResponse) == 0) {
		return nil, fmt.Errorf("%w (anonymous logon refused)", errBadCredentials)
	}
	if len(m.NTResponse) <= 24 {
		return nil, fmt.Errorf("%w (NTLMv1 response refused; only NTLMv2 is accepted)", errBadCredentials)
	}
	if len(m.NTResponse) < 16+28 {
		return nil, fmt.Errorf("%w: NTLMv2 response too short", errMalformed)
	}
	proof, temp := m.NTResponse[:16], m.NTResponse[16:]
	if _, err := parseNTLMv2Blob(temp); err != nil {
		return nil, err
	}
	responseKeyNT := ntowfv2(password, m.User, m.Domain)
	want := ntProofStr(responseKeyNT, serverChallenge, temp)
	if subtle.ConstantTimeCompare(want, proof) != 1 {
		return nil, fmt.Errorf("%w (NTProofStr mismatch)", errBadCredentials)
	}
	keyExchangeKey := sessionBaseKeyV2(responseKeyNT, proof)
	if m.Flags&flagKeyExch != 0 && len(m.EncryptedRandomSessionKey) != 16 {
		return nil, fmt.Errorf("%w: KEY_EXCH with a %d-byte session key", errMalformed, len(m.EncryptedRandomSessionKey))
	}
	return exportedSessionKey(m.Flags, keyExchangeKey, m.EncryptedRandomSessionKey), nil
}

// checkMIC verifies the AUTHENTICATE MIC when the client's MsvAvFlags says it
// sent one.
func checkMIC(m authenticateMessage, exported []byte, p *pendingNTLM) error {
	blob, err := parseNTLMv2Blob(m.NTResponse[16:])
	if err != nil {
		return err
	}
	v, ok := blob.pair(avFlags)
	if !ok || len(v) != 4 || binary.LittleEndian.Uint32(v)&avFlagMICPresent == 0 {
		return nil
	}
	if m.MICOffset == 0 {
		return fmt.Errorf("%w: MsvAvFlags announces a MIC but the message has no room for one", errMalformed)
	}
	want := computeMIC(exported, p.negotiate, p.challenge, m.Raw, m.MICOffset)
	if subtle.ConstantTimeCompare(want, m.Raw[m.MICOffset:m.MICOffset+16]) != 1 {
		return fmt.Errorf("%w (MIC mismatch)", errBadCredentials)
	}
	return nil
}

// lookupNTLM finds the password for the user and domain an AUTHENTICATE
// names: "DOMAIN\user", a UPN, or a bare name in our own domain.
func (a *Auth) lookupNTLM(user, domain string) (key, password string, ok bool) {
	if user == "" {
		return "", "", false
	}
	var candidates []string
	if domain != "" {
		candidates = append(candidates, domain+`\`+user)
	}
	if domain == "" || a.isOurDomain(domain) {
		candidates = append(candidates, user, a.opts.Domain+`\`+user, user+"@"+a.opts.DNSDomain)
		if local, dom, found := strings.Cut(user, "@"); found && a.isOurDomain(dom) {
			candidates = append(candidates, local, a.opts.Domain+`\`+local, local+"@"+a.opts.DNSDomain)
		}
	}
	for _, c := range candidates {
		if u, found := a.users[strings.ToLower(c)]; found {
			return u.key, u.password, true
		}
	}
	return "", "", false
}

func (a *Auth) isOurDomain(d string) bool {
	return strings.EqualFold(d, a.opts.Domain) || strings.EqualFold(d, a.opts.DNSDomain) ||
		strings.EqualFold(d, a.opts.ServerName) || d == "."
}

// avChannelBindings is MsvAvChannelBindings (MS-NLMP 2.2.2.1).
const avChannelBindings uint16 = 10

// checkChannelBinding compares the client's MsvAvChannelBindings with the
// TLS channel it authenticated on. All zeros means "not supplied".
func (a *Auth) checkChannelBinding(m authenticateMessage, p *pendingNTLM) error {
	if !p.overTLS {
		return nil
	}
	blob, err := parseNTLMv2Blob(m.NTResponse[16:])
	if err != nil {
		return err
	}
	got, ok := blob.pair(avChannelBindings)
	supplied := ok && !bytes.Equal(got, make([]byte, len(got)))
	switch {
	case !supplied && a.opts.RequireChannelBinding:
		return fmt.Errorf("%w (no channel binding token, and the listener requires one)", errBadCredentials)
	case !supplied || p.channelBinding == nil:
		return nil
	case subtle.ConstantTimeCompare(got, p.channelBinding) != 1:
		return fmt.Errorf("%w (channel binding token does not match this TLS channel)", errBadCredentials)
	}
	return nil
}

// channelBindingHash is MD5 of the gss_channel_bindings_struct carrying
// "tls-server-end-point:" + the certificate hash (RFC 5929 section 4.1).
func channelBindingHash(cert *x509.Certificate) []byte {
	var h hash.Hash
	switch cert.SignatureAlgorithm {
	case x509.SHA384WithRSA, x509.ECDSAWithSHA384, x509.SHA384WithRSAPSS:
		h = sha512.New384()
	case x509.SHA512WithRSA, x509.ECDSAWithSHA512, x509.SHA512WithRSAPSS:
		h = sha512.New()
	default: // SHA-256, and MD5/SHA-1 which RFC 5929 upgrades to SHA-256
		h = sha256.New()
	}
	h.Write(cert.Raw)
	app := append([]byte("tls-server-end-point:"), h.Sum(nil)...)
	s := make([]byte, 16, 20+len(app)) // zero initiator/acceptor type and address
	s = binary.LittleEndian.AppendUint32(s, uint32(len(app)))
	s = append(s, app...)
	sum := md5.Sum(s)
	return sum[:]
}
