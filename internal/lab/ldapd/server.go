package ldapd

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
)

// LDAP result codes the server uses (RFC 4511).
const (
	resultSuccess                      = 0
	resultOperationsError              = 1
	resultProtocolError                = 2
	resultSizeLimitExceeded            = 4
	resultAuthMethodNotSupported       = 7
	resultStrongerAuthRequired         = 8
	resultUnavailableCriticalExtension = 12
	resultSaslBindInProgress           = 14
	resultNoSuchObject                 = 32
	resultInvalidCredentials           = 49
	resultUnwillingToPerform           = 53
)

// LDAP protocol operations (application tags).
const (
	opBindRequest     = 0
	opBindResponse    = 1
	opUnbindRequest   = 2
	opSearchRequest   = 3
	opSearchEntry     = 4
	opSearchDone      = 5
	opModifyRequest   = 6
	opAddRequest      = 8
	opDelRequest      = 10
	opModDNRequest    = 12
	opCompareRequest  = 14
	opAbandonRequest  = 16
	opExtendedRequest = 23
	opExtendedResp    = 24
)

const (
	oidStartTLS = "1.3.6.1.4.1.1466.20037"
	oidWhoAmI   = "1.3.6.1.4.1.4203.1.11.3"
	oidPaging   = "1.2.840.113556.1.4.319"

	// maxMessageBytes bounds one LDAP message from a client.
	maxMessageBytes = 1 << 20
	idleTimeout     = 5 * time.Minute
	writeTimeout    = 30 * time.Second
	maxPagedCookies = 16
)

// Options configures a Server.
type Options struct {
	// Addr is the plain LDAP listen address; default 127.0.0.1:0.
	Addr string
	// TLS enables StartTLS on Addr and an LDAPS listener on LDAPSAddr.
	TLS *tls.Config
	// LDAPSAddr is the LDAPS listen address; default 127.0.0.1:0 (only with TLS).
	LDAPSAddr string
	// Users maps a bind name to its password. A name may be a DN, a UPN
	// (user@dns.domain) or DOMAIN\sAMAccountName; any of those forms of the
	// same directory account binds as it. NTLM binds use the same map.
	Users map[string]string
	// MaxPageSize caps entries per page and per unpaged search (AD's
	// MaxPageSize, default 1000): larger unpaged results end in sizeLimitExceeded.
	MaxPageSize int
	// RequireTLSForSimpleBind refuses simple binds outside TLS with
	// strongerAuthRequired, like a DC with LDAP signing enforced.
	RequireTLSForSimpleBind bool
	// DNSHostName is the rootDSE dnsHostName; default dc1.<dns domain>.
	DNSHostName string
}

// Server is a running LDAP server.
type Server struct {
	dir   *Directory
	opts  Options
	ln    net.Listener
	lns   net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]struct{}
	done  bool
}

// Start listens on opts.Addr (and an LDAPS address when opts.TLS is set) and
// serves dir until Close.
func Start(dir *Directory, opts Options) (*Server, error) {
	if dir == nil {
		return nil, errors.New("ldapd: nil directory")
	}
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.LDAPSAddr == "" {
		opts.LDAPSAddr = "127.0.0.1:0"
	}
	if opts.MaxPageSize <= 0 {
		opts.MaxPageSize = 1000
	}
	if opts.DNSHostName == "" {
		opts.DNSHostName = "dc1." + dir.DNSDomain()
	}
	s := &Server{dir: dir, opts: opts, conns: map[net.Conn]struct{}{}}
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("ldapd: listen %s: %w", opts.Addr, err)
	}
	s.ln = ln
	if opts.TLS != nil {
		lns, err := tls.Listen("tcp", opts.LDAPSAddr, opts.TLS)
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("ldapd: listen ldaps %s: %w", opts.LDAPSAddr, err)
		}
		s.lns = lns
		s.wg.Add(1)
		go s.accept(lns, true)
	}
	s.wg.Add(1)
	go s.accept(ln, false)
	return s, nil
}

// URL is the ldap:// address of the plain listener.
func (s *Server) URL() string { return "ldap://" + s.ln.Addr().String() }

// LDAPSURL is the ldaps:// address, or "" without TLS.
func (s *Server) LDAPSURL() string {
	if s.lns == nil {
		return ""
	}
	return "ldaps://" + s.lns.Addr().String()
}

// Directory is the directory the server answers from.
func (s *Server) Directory() *Directory { return s.dir }

// Close stops the listeners, closes every connection and waits for them.
func (s *Server) Close() error {
	s.mu.Lock()
	s.done = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	err := s.ln.Close()
	if s.lns != nil {
		s.lns.Close()
	}
	s.wg.Wait()
	return err
}

func (s *Server) accept(ln net.Listener, isTLS bool) {
	defer s.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.done {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			cs := &session{srv: s, conn: c, r: bufio.NewReader(c), tls: isTLS}
			cs.serve()
			s.mu.Lock()
			delete(s.conns, cs.conn)
			delete(s.conns, c)
			s.mu.Unlock()
			cs.conn.Close()
		}()
	}
}

// session is one client connection.
type session struct {
	srv   *Server
	conn  net.Conn
	r     *bufio.Reader
	w     io.Writer // nil: write to conn
	tls   bool
	bound string // bind identity; "" is anonymous
	ntlm  *ntlmState
	pages map[string]*pageState
	seq   int
	quit  bool
}

func (cs *session) serve() {
	for !cs.quit {
		cs.conn.SetReadDeadline(time.Now().Add(idleTimeout))
		msg, err := readMessage(cs.r)
		if err != nil {
			return
		}
		if !cs.handle(msg) {
			return
		}
	}
}

// readMessage reads one BER-framed LDAP message, bounded by maxMessageBytes.
func readMessage(r io.Reader) ([]byte, error) {
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	if hdr[0] != 0x30 {
		return nil, errors.New("not an LDAPMessage")
	}
	buf := []byte{hdr[0], hdr[1]}
	length := int(hdr[1])
	if hdr[1]&0x80 != 0 {
		n := int(hdr[1] & 0x7f)
		if n == 0 || n > 4 {
			return nil, errors.New("unsupported length encoding")
		}
		lb := make([]byte, n)
		if _, err := io.ReadFull(r, lb); err != nil {
			return nil, err
		}
		buf = append(buf, lb...)
		length = 0
		for _, b := range lb {
			length = length<<8 | int(b)
		}
	}
	if length > maxMessageBytes {
		return nil, fmt.Errorf("message of %d bytes exceeds %d", length, maxMessageBytes)
	}
	body := make([]byte, length)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, err
	}
	return append(buf, body...), nil
}

// handle processes one message; false ends the connection.
func (cs *session) handle(msg []byte) (keep bool) {
	p, err := ber.DecodePacketErr(msg)
	if err != nil || p == nil || p.ClassType != ber.ClassUniversal || p.Tag != ber.TagSequence ||
		p.TagType != ber.TypeConstructed || len(p.Children) < 2 || len(p.Children) > 3 {
		cs.notice(resultProtocolError, "malformed LDAPMessage")
		return false
	}
	idp := p.Children[0]
	id, ok := idp.Value.(int64)
	if idp.ClassType != ber.ClassUniversal || idp.Tag != ber.TagInteger || !ok || id < 0 || id > 1<<31-1 {
		cs.notice(resultProtocolError, "bad messageID")
		return false
	}
	op := p.Children[1]
	if op.ClassType != ber.ClassApplication {
		cs.notice(resultProtocolError, "bad protocolOp")
		return false
	}
	var controls []control
	if len(p.Children) == 3 {
		controls, ok = parseControls(p.Children[2])
		if !ok {
			cs.notice(resultProtocolError, "malformed controls")
			return false
		}
	}
	switch op.Tag {
	case opBindRequest:
		return cs.bind(id, op)
	case opUnbindRequest:
		return false
	case opSearchRequest:
		return cs.search(id, op, controls)
	case opExtendedRequest:
		return cs.extended(id, op)
	case opAbandonRequest:
		return true
	case opModifyRequest, opAddRequest, opDelRequest, opModDNRequest, opCompareRequest:
		if cs.bound == "" {
			return cs.result(id, op.Tag+1, resultOperationsError, "", errNeedBind, nil)
		}
		return cs.result(id, op.Tag+1, resultUnwillingToPerform, "", "ldapd: write operations are not supported; use the Go API", nil)
	}
	cs.notice(resultProtocolError, "unknown protocolOp")
	return false
}

// errNeedBind is AD's text for an operation before a successful bind.
const errNeedBind = "000004DC: LdapErr: DSID-0C090A5C, comment: In order to perform this operation a successful bind must be completed on the connection., data 0, v4563"

type control struct {
	oid      string
	critical bool
	value    []byte
}

func parseControls(p *ber.Packet) ([]control, bool) {
	if p.ClassType != ber.ClassContext || p.Tag != 0 || p.TagType != ber.TypeConstructed {
		return nil, false
	}
	var out []control
	for _, c := range p.Children {
		if c.ClassType != ber.ClassUniversal || c.Tag != ber.TagSequence || len(c.Children) == 0 || len(c.Children) > 3 {
			return nil, false
		}
		if !isOctets(c.Children[0]) {
			return nil, false
		}
		ctl := control{oid: string(raw(c.Children[0]))}
		for _, f := range c.Children[1:] {
			switch {
			case f.ClassType == ber.ClassUniversal && f.Tag == ber.TagBoolean:
				b, _ := f.Value.(bool)
				ctl.critical = b
			case isOctets(f):
				ctl.value = raw(f)
			default:
				return nil, false
			}
		}
		out = append(out, ctl)
	}
	return out, true
}

func (cs *session) write(p *ber.Packet) bool {
	if cs.w != nil {
		_, err := cs.w.Write(p.Bytes())
		return err == nil
	}
	cs.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, err := cs.conn.Write(p.Bytes())
	return err == nil
}

func envelope(id int64) *ber.Packet {
	env := ber.NewSequence("LDAPMessage")
	env.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, id, "messageID"))
	return env
}

func ldapResult(tag ber.Tag, code int, matched, diag string) *ber.Packet {
	r := ber.Encode(ber.ClassApplication, ber.TypeConstructed, tag, nil, "result")
	r.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, int64(code), "resultCode"))
	r.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, matched, "matchedDN"))
	r.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, diag, "diagnosticMessage"))
	return r
}

// result sends an LDAPResult-shaped response; it returns false when the write failed.
func (cs *session) result(id int64, tag ber.Tag, code int, matched, diag string, ctls *ber.Packet) bool {
	env := envelope(id)
	env.AppendChild(ldapResult(tag, code, matched, diag))
	if ctls != nil {
		env.AppendChild(ctls)
	}
	return cs.write(env)
}

// notice sends an unsolicited notification (message ID 0) before a disconnect.
func (cs *session) notice(code int, diag string) {
	env := envelope(0)
	r := ldapResult(opExtendedResp, code, "", diag)
	r.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 10, "1.3.6.1.4.1.1466.20036", "responseName"))
	env.AppendChild(r)
	cs.write(env)
}

func (cs *session) extended(id int64, op *ber.Packet) bool {
	if len(op.Children) == 0 || op.Children[0].ClassType != ber.ClassContext || op.Children[0].Tag != 0 {
		return cs.result(id, opExtendedResp, resultProtocolError, "", "malformed extended request", nil)
	}
	switch string(raw(op.Children[0])) {
	case oidStartTLS:
		if cs.tls {
			return cs.result(id, opExtendedResp, resultOperationsError, "", "TLS already established", nil)
		}
		if cs.srv.opts.TLS == nil || cs.w != nil {
			return cs.result(id, opExtendedResp, resultUnavailable, "", "StartTLS is not configured on this server", nil)
		}
		if cs.r.Buffered() > 0 {
			return cs.result(id, opExtendedResp, resultOperationsError, "", "data after StartTLS request", nil)
		}
		env := envelope(id)
		r := ldapResult(opExtendedResp, resultSuccess, "", "")
		r.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 10, oidStartTLS, "responseName"))
		env.AppendChild(r)
		if !cs.write(env) {
			return false
		}
		tc := tls.Server(cs.conn, cs.srv.opts.TLS)
		tc.SetDeadline(time.Now().Add(writeTimeout))
		if err := tc.Handshake(); err != nil {
			return false
		}
		tc.SetDeadline(time.Time{})
		cs.srv.mu.Lock()
		cs.srv.conns[tc] = struct{}{}
		cs.srv.mu.Unlock()
		cs.conn, cs.r, cs.tls = tc, bufio.NewReader(tc), true
		return true
	case oidWhoAmI:
		env := envelope(id)
		r := ldapResult(opExtendedResp, resultSuccess, "", "")
		if cs.bound != "" {
			r.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 11, "u:"+cs.bound, "responseValue"))
		}
		env.AppendChild(r)
		return cs.write(env)
	}
	return cs.result(id, opExtendedResp, resultProtocolError, "", "unsupported extended operation", nil)
}

const resultUnavailable = 52

func (s *Server) rootDSE() *entry {
	d := s.dir
	e := &entry{dn: ""}
	set := func(k string, v ...string) { e.set(k, v) }
	set("objectClass", "top")
	set("defaultNamingContext", d.baseDN)
	set("rootDomainNamingContext", d.baseDN)
	set("configurationNamingContext", "CN=Configuration,"+d.baseDN)
	set("schemaNamingContext", d.schemaDN())
	set("namingContexts", d.baseDN, "CN=Configuration,"+d.baseDN, d.schemaDN())
	set("dnsHostName", s.opts.DNSHostName)
	short, _, _ := strings.Cut(s.opts.DNSHostName, ".")
	set("serverName", "CN="+strings.ToUpper(short)+",CN=Servers,CN=Default-First-Site-Name,CN=Sites,CN=Configuration,"+d.baseDN)
	set("ldapServiceName", d.DNSDomain()+":"+strings.ToLower(short)+"$@"+strings.ToUpper(d.DNSDomain()))
	set("supportedLDAPVersion", "3")
	set("supportedControl", oidPaging)
	ext := []string{oidWhoAmI}
	if s.opts.TLS != nil {
		ext = append(ext, oidStartTLS)
	}
	set("supportedExtension", ext...)
	set("supportedCapabilities", "1.2.840.113556.1.4.800")
	set("supportedSASLMechanisms", "NTLM")
	set("isGlobalCatalogReady", "FALSE")
	set("isSynchronized", "TRUE")
	set("domainFunctionality", "7")
	set("currentTime", time.Now().UTC().Format("20060102150405.0Z"))
	return e
}
