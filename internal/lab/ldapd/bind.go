package ldapd

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"strings"
	"time"
	"unicode/utf16"

	ber "github.com/go-asn1-ber/asn1-ber"
	"golang.org/x/crypto/md4" //nolint:staticcheck // NTLM's NT hash is MD4 by definition
)

// AD's diagnostic text for a wrong name or password (data 52e).
const errBadCredentials = "80090308: LdapErr: DSID-0C090569, comment: AcceptSecurityContext error, data 52e, v4563"

// Bind request authentication choices (RFC 4511 and MS-ADTS "sicily").
const (
	authSimple          = 0
	authSASL            = 3
	authSicilyNegotiate = 10
	authSicilyResponse  = 11
)

type ntlmState struct {
	challenge [8]byte
}

func (cs *session) bind(id int64, op *ber.Packet) bool {
	c := op.Children
	if op.TagType != ber.TypeConstructed || len(c) != 3 || c[0].Tag != ber.TagInteger || !isOctets(c[1]) ||
		c[2].ClassType != ber.ClassContext {
		return cs.bindResult(id, resultProtocolError, "", "malformed bind request")
	}
	if v, _ := c[0].Value.(int64); v != 3 {
		return cs.bindResult(id, resultProtocolError, "", "only LDAP v3 is supported")
	}
	cs.pages = nil
	name := string(raw(c[1]))
	switch c[2].Tag {
	case authSimple:
		cs.bound, cs.ntlm = "", nil
		pw := string(raw(c[2]))
		if pw == "" {
			if name != "" {
				// RFC 4513 unauthenticated bind; AD refuses it.
				return cs.bindResult(id, resultUnwillingToPerform, "", "unauthenticated bind (DN with no password) disallowed")
			}
			return cs.bindResult(id, resultSuccess, "", "")
		}
		if cs.srv.opts.RequireTLSForSimpleBind && !cs.tls {
			return cs.bindResult(id, resultStrongerAuthRequired, "", "00002028: LdapErr: DSID-0C090259, comment: The server requires binds to turn on integrity checking if SSL\\TLS are not already active on the connection, data 0, v4563")
		}
		if who, ok := cs.srv.checkPassword(name, pw); ok {
			cs.bound = who
			return cs.bindResult(id, resultSuccess, "", "")
		}
		return cs.bindResult(id, resultInvalidCredentials, "", errBadCredentials)
	case authSicilyNegotiate:
		cs.bound = ""
		msg := raw(c[2])
		if len(msg) < 12 || !bytes.HasPrefix(msg, []byte("NTLMSSP\x00")) || binary.LittleEndian.Uint32(msg[8:]) != 1 {
			cs.ntlm = nil
			return cs.bindResult(id, resultProtocolError, "", "malformed NTLM negotiate message")
		}
		st := &ntlmState{}
		rand.Read(st.challenge[:])
		cs.ntlm = st
		// AD returns the CHALLENGE message in the matchedDN field.
		return cs.bindResult(id, resultSuccess, string(cs.srv.challengeMessage(st.challenge)), "")
	case authSicilyResponse:
		st := cs.ntlm
		cs.ntlm, cs.bound = nil, ""
		if st == nil {
			return cs.bindResult(id, resultProtocolError, "", "NTLM response without a negotiate")
		}
		if who, ok := cs.srv.checkNTLM(st.challenge, raw(c[2])); ok {
			cs.bound = who
			return cs.bindResult(id, resultSuccess, "", "")
		}
		return cs.bindResult(id, resultInvalidCredentials, "", errBadCredentials)
	case authSASL:
		return cs.bindResult(id, resultAuthMethodNotSupported, "", "SASL mechanisms are not supported by ldapd; use simple or NTLM")
	}
	return cs.bindResult(id, resultAuthMethodNotSupported, "", "unsupported authentication choice")
}

func (cs *session) bindResult(id int64, code int, matched, diag string) bool {
	return cs.result(id, opBindResponse, code, matched, diag, nil)
}

// checkPassword finds a Users entry naming the same account as name.
func (s *Server) checkPassword(name, pw string) (string, bool) {
	for k, v := range s.opts.Users {
		if s.sameAccount(k, name) && subtle.ConstantTimeCompare([]byte(v), []byte(pw)) == 1 {
			return name, true
		}
	}
	return "", false
}

func (s *Server) sameAccount(a, b string) bool {
	if strings.EqualFold(a, b) {
		return true
	}
	na, nb := s.dir.resolveAccount(a), s.dir.resolveAccount(b)
	return na != "" && na == nb
}

// resolveAccount maps a DN, UPN or DOMAIN\name to the normalised DN of an entry.
func (d *Directory) resolveAccount(name string) string {
	d.mu.RLock()
	defer d.mu.RUnlock()
	dns, nb := d.DNSDomain(), d.NetBIOSDomain()
	var sam, upn string
	switch {
	case strings.Contains(name, `\`):
		dom, user, _ := strings.Cut(name, `\`)
		if !strings.EqualFold(dom, nb) && !strings.EqualFold(dom, dns) {
			return ""
		}
		sam = user
	case strings.Contains(name, "@"):
		upn = name
		user, dom, _ := strings.Cut(name, "@")
		if strings.EqualFold(dom, dns) {
			sam = user // AD accepts sAMAccountName@dnsdomain as an implicit UPN
		}
	case strings.Contains(name, "="):
		n, err := normalizeDN(name)
		if err != nil {
			return ""
		}
		if _, ok := d.entries[n]; ok {
			return n
		}
		return ""
	default:
		return ""
	}
	for _, n := range d.order {
		e := d.entries[n]
		for _, v := range e.values("userPrincipalName") {
			if upn != "" && strings.EqualFold(v, upn) {
				return n
			}
		}
		for _, v := range e.values("sAMAccountName") {
			if sam != "" && strings.EqualFold(v, sam) {
				return n
			}
		}
	}
	return ""
}

// NTLM negotiate flags the server offers (MS-NLMP 2.2.2.5): unicode,
// request target, NTLM, always sign, target type domain, extended session
// security, target info, version, 128 and 56 bit. No LM key, no key exchange.
const ntlmFlags = 0x00000001 | 0x00000004 | 0x00000200 | 0x00008000 | 0x00010000 | 0x00080000 |
	0x00800000 | 0x02000000 | 0x20000000 | 0x80000000

func utf16le(s string) []byte {
	u := utf16.Encode([]rune(s))
	b := make([]byte, 2*len(u))
	for i, r := range u {
		binary.LittleEndian.PutUint16(b[2*i:], r)
	}
	return b
}

func fromUTF16le(b []byte) string {
	if len(b)%2 != 0 {
		return ""
	}
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	return string(utf16.Decode(u))
}

func (s *Server) challengeMessage(challenge [8]byte) []byte {
	d := s.dir
	host, _, _ := strings.Cut(s.opts.DNSHostName, ".")
	target := utf16le(d.NetBIOSDomain())
	var info bytes.Buffer
	av := func(id uint16, v []byte) {
		binary.Write(&info, binary.LittleEndian, id)
		binary.Write(&info, binary.LittleEndian, uint16(len(v)))
		info.Write(v)
	}
	av(2, target)
	av(1, utf16le(strings.ToUpper(host)))
	av(4, utf16le(d.DNSDomain()))
	av(3, utf16le(s.opts.DNSHostName))
	ts := make([]byte, 8)
	binary.LittleEndian.PutUint64(ts, uint64(time.Now().UnixNano()/100)+116444736000000000)
	av(7, ts)
	av(0, nil)

	const hdr = 56
	m := make([]byte, hdr, hdr+len(target)+info.Len())
	copy(m, "NTLMSSP\x00")
	binary.LittleEndian.PutUint32(m[8:], 2)
	binary.LittleEndian.PutUint16(m[12:], uint16(len(target)))
	binary.LittleEndian.PutUint16(m[14:], uint16(len(target)))
	binary.LittleEndian.PutUint32(m[16:], hdr)
	binary.LittleEndian.PutUint32(m[20:], ntlmFlags)
	copy(m[24:32], challenge[:])
	binary.LittleEndian.PutUint16(m[40:], uint16(info.Len()))
	binary.LittleEndian.PutUint16(m[42:], uint16(info.Len()))
	binary.LittleEndian.PutUint32(m[44:], uint32(hdr+len(target)))
	copy(m[48:], []byte{10, 0, 0x4f, 0x45, 0, 0, 0, 15}) // version 10.0.17743, NTLM revision 15
	m = append(m, target...)
	return append(m, info.Bytes()...)
}

// field reads an NTLM (len, maxlen, offset) field at off; ok is false when out of bounds.
func field(msg []byte, off int) ([]byte, bool) {
	if off+8 > len(msg) {
		return nil, false
	}
	l := int(binary.LittleEndian.Uint16(msg[off:]))
	o := int(binary.LittleEndian.Uint32(msg[off+4:]))
	if o < 0 || o > len(msg) || l > len(msg)-o {
		return nil, false
	}
	return msg[o : o+l], true
}

// checkNTLM verifies an NTLMv2 AUTHENTICATE message against the Users map.
func (s *Server) checkNTLM(challenge [8]byte, msg []byte) (string, bool) {
	if len(msg) < 64 || !bytes.HasPrefix(msg, []byte("NTLMSSP\x00")) || binary.LittleEndian.Uint32(msg[8:]) != 3 {
		return "", false
	}
	nt, ok1 := field(msg, 20)
	dom, ok2 := field(msg, 28)
	usr, ok3 := field(msg, 36)
	if !ok1 || !ok2 || !ok3 || len(nt) <= 24 { // 24 bytes is NTLMv1: refused
		return "", false
	}
	flags := binary.LittleEndian.Uint32(msg[60:])
	decode := func(b []byte) string {
		if flags&1 != 0 {
			return fromUTF16le(b)
		}
		return string(b)
	}
	user, domain := decode(usr), decode(dom)
	if user == "" {
		return "", false // anonymous NTLM
	}
	name := user
	if domain != "" {
		name = domain + `\` + user
	}
	for k, pw := range s.opts.Users {
		if !s.sameAccount(k, name) {
			continue
		}
		h := md4.New()
		h.Write(utf16le(pw))
		mac := hmac.New(md5.New, h.Sum(nil))
		mac.Write(utf16le(strings.ToUpper(user) + domain))
		owf := mac.Sum(nil)
		proof := hmac.New(md5.New, owf)
		proof.Write(challenge[:])
		proof.Write(nt[16:])
		if hmac.Equal(proof.Sum(nil), nt[:16]) {
			return name, true
		}
	}
	return "", false
}
