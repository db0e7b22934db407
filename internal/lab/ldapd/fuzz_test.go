package ldapd

import (
	"bytes"
	"io"
	"testing"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"
)

// request builds an LDAPMessage around op with optional controls.
func request(id int64, op *ber.Packet, ctls ...ldap.Control) []byte {
	env := ber.NewSequence("LDAPMessage")
	env.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, id, "id"))
	env.AppendChild(op)
	if len(ctls) > 0 {
		c := ber.Encode(ber.ClassContext, ber.TypeConstructed, 0, nil, "Controls")
		for _, ctl := range ctls {
			c.AppendChild(ctl.Encode())
		}
		env.AppendChild(c)
	}
	return env.Bytes()
}

func simpleBind(name, pw string) *ber.Packet {
	b := ber.Encode(ber.ClassApplication, ber.TypeConstructed, opBindRequest, nil, "bind")
	b.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, 3, "v"))
	b.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, name, "name"))
	b.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 0, pw, "pw"))
	return b
}

func searchOp(base string, scope int, filter string) *ber.Packet {
	f, err := ldap.CompileFilter(filter)
	if err != nil {
		panic(err)
	}
	s := ber.Encode(ber.ClassApplication, ber.TypeConstructed, opSearchRequest, nil, "search")
	s.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, base, "base"))
	s.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, scope, "scope"))
	s.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, 0, "deref"))
	s.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, 0, "size"))
	s.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, 0, "time"))
	s.AppendChild(ber.NewBoolean(ber.ClassUniversal, ber.TypePrimitive, ber.TagBoolean, false, "types"))
	s.AppendChild(f)
	a := ber.NewSequence("attrs")
	a.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "dNSHostName", "a"))
	s.AppendChild(a)
	return s
}

// FuzzMessage feeds arbitrary bytes to the framing and the request handler
// of a bound session: nothing may panic, whatever a client sends.
func FuzzMessage(f *testing.F) {
	f.Add(request(1, simpleBind("svc-watch@lab.example", testPass)))
	f.Add(request(2, searchOp(testBase, 2, "(&(objectCategory=computer)(memberOf:1.2.840.113556.1.4.1941:=CN=Tier0 Servers,OU=Tier0,DC=lab,DC=example))")))
	f.Add(request(3, searchOp(testBase, 2, "(|(dNSHostName=srv-*-0*)(!(userAccountControl:1.2.840.113556.1.4.803:=2))(uac>=5)(x<=a)(y=*))"), ldap.NewControlPaging(2)))
	f.Add(request(4, searchOp("", 0, "(objectClass=*)")))
	f.Add(request(5, searchOp(testBase, 2, `(objectSid=\01\05\00\00)`), ldap.NewControlString("1.2.3", true, "v")))
	f.Add(request(6, ber.Encode(ber.ClassApplication, ber.TypePrimitive, opUnbindRequest, nil, "unbind")))
	f.Add([]byte{0x30, 0x84, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0x30, 0x03, 0x02, 0x01})

	d := NewDirectory(testBase)
	if err := SeedSambaLab(d); err != nil {
		f.Fatal(err)
	}
	srv := &Server{dir: d, opts: Options{MaxPageSize: 3, DNSHostName: "dc1.lab.example", Users: map[string]string{"svc-watch@lab.example": testPass}}}
	f.Fuzz(func(t *testing.T, data []byte) {
		cs := &session{srv: srv, w: io.Discard, bound: "svc-watch@lab.example"}
		r := bytes.NewReader(data)
		for i := 0; i < 8; i++ {
			msg, err := readMessage(r)
			if err != nil {
				return
			}
			if !cs.handle(msg) {
				return
			}
		}
	})
}
