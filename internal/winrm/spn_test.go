package winrm

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/svcwatch/svcwatch/internal/config"
	"github.com/svcwatch/svcwatch/internal/inventory"
	"github.com/svcwatch/svcwatch/internal/testutil"
)

func utf16LE(s string) []byte {
	var b []byte
	for _, u := range utf16.Encode([]rune(s)) {
		b = binary.LittleEndian.AppendUint16(b, u)
	}
	return b
}

// testChallenge is a minimal NTLMv2 CHALLENGE_MESSAGE with a timestamp.
func testChallenge() []byte {
	var info []byte
	avp := func(id uint16, v []byte) {
		info = binary.LittleEndian.AppendUint16(info, id)
		info = binary.LittleEndian.AppendUint16(info, uint16(len(v)))
		info = append(info, v...)
	}
	avp(2, utf16LE("CORP"))
	avp(1, utf16LE("DC01"))
	avp(7, binary.LittleEndian.AppendUint64(nil, 133000000000000000))
	avp(0, nil)
	const flags = 0x00000001 | 0x00000010 | 0x00000020 | 0x00000200 | 0x00080000 | 0x00800000 | 0x20000000 | 0x40000000 | 0x80000000
	m := make([]byte, 48)
	copy(m, "NTLMSSP\x00")
	binary.LittleEndian.PutUint32(m[8:], 2)
	binary.LittleEndian.PutUint32(m[16:], 48) // empty TargetName
	binary.LittleEndian.PutUint32(m[20:], flags)
	copy(m[24:32], "\x01\x02\x03\x04\x05\x06\x07\x08")
	binary.LittleEndian.PutUint16(m[40:], uint16(len(info)))
	binary.LittleEndian.PutUint16(m[42:], uint16(len(info)))
	binary.LittleEndian.PutUint32(m[44:], 48)
	return append(m, info...)
}

// The NTLM AUTHENTICATE names the host's HTTP service (MsvAvTargetName), as
// Windows clients do, so a relayed authentication carries the wrong name.
func TestNTLMAuthenticateNamesTheHost(t *testing.T) {
	got := make(chan []byte, 1)
	addr := testutil.ServeTCP(t, func(c net.Conn) {
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(c)
		for i := 0; i < 2; i++ {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			_, _ = bytes.NewBuffer(nil).ReadFrom(req.Body)
			_, tok, _ := strings.Cut(req.Header.Get("Authorization"), " ")
			raw, _ := base64.StdEncoding.DecodeString(tok)
			if i == 0 {
				resp := "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Negotiate " + base64.StdEncoding.EncodeToString(testChallenge()) + "\r\nContent-Length: 0\r\n\r\n"
				_, _ = c.Write([]byte(resp))
				continue
			}
			select {
			case got <- raw:
			default: // a later connection: the first AUTHENTICATE is the one checked
			}
			_, _ = c.Write([]byte("HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n"))
		}
	})
	col, err := New(config.WinRM{Scheme: "http", Auth: "ntlm", Username: `CORP\svc`, ConnectTo: addr, Timeout: 10 * time.Second}, "pw", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer col.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := col.Collect(ctx, inventory.Host{Name: "DC01.corp.example"}, inventory.CollectRequest{}); !errorsIs(err, ErrAuth) {
		t.Fatalf("err = %v, want ErrAuth (the test server rejects every AUTHENTICATE)", err)
	}
	var auth []byte
	select {
	case auth = <-got:
	default:
		t.Fatal("no AUTHENTICATE message reached the server")
	}
	if want := utf16LE("HTTP/dc01.corp.example"); !bytes.Contains(auth, want) {
		t.Errorf("AUTHENTICATE does not carry MsvAvTargetName HTTP/dc01.corp.example")
	}
}
