package wsauth

import (
	"bytes"
	"crypto/rand"
	"crypto/rc4"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/spnego"
)

// testClient is a minimal NTLMv2 initiator for driving the server over a
// real HTTP connection with sealing, KEY_EXCH and a MIC (go-ntlmssp does none
// of these). Its arithmetic is the package's, checked by the vector tests;
// what it exercises here is the server's protocol handling.
type testClient struct {
	t                        *testing.T
	user, domain, password   string
	mic, spnego, tamperMIC   bool
	mechListMIC, tamperList  bool // SPNEGO mechListMIC in the final NegTokenResp
	negotiate, challengeMsg  []byte
	flags                    uint32
	exported                 []byte
	sess                     *sealSession // client view: send = client→server
	http                     *http.Client
	url                      string
	challengeTargetInfoPairs []avPair
}

const clientFlags = flagUnicode | flagRequestTarget | flagSign | flagSeal | flagNTLM | flagAlwaysSign |
	flagESS | flagTargetInfo | flagVersion | flag128 | flagKeyExch | flag56

func (c *testClient) negotiateMessage() []byte {
	b := make([]byte, 40)
	copy(b, ntlmSignature)
	binary.LittleEndian.PutUint32(b[8:], messageNegotiate)
	binary.LittleEndian.PutUint32(b[12:], clientFlags)
	copy(b[32:], windowsVersion)
	c.negotiate = b
	return b
}

func (c *testClient) authenticateMessage(challenge []byte) []byte {
	t := c.t
	c.challengeMsg = challenge
	if messageType(challenge) != messageChallenge || len(challenge) < 56 {
		t.Fatalf("not a CHALLENGE_MESSAGE: %x", challenge)
	}
	c.flags = binary.LittleEndian.Uint32(challenge[20:24])
	serverChallenge := challenge[24:32]
	ti, err := field(challenge, 40)
	if err != nil {
		t.Fatal(err)
	}
	pairs, err := parseAVPairs(ti)
	if err != nil {
		t.Fatal(err)
	}
	c.challengeTargetInfoPairs = pairs
	var ts []byte
	var blobPairs []byte
	for _, p := range pairs {
		if p.ID == avTimestamp {
			ts = p.Value
		}
		blobPairs = appendAVPair(blobPairs, p.ID, p.Value)
	}
	if len(ts) != 8 {
		t.Fatalf("challenge has no timestamp")
	}
	if c.mic {
		blobPairs = appendAVPair(blobPairs, avFlags, binary.LittleEndian.AppendUint32(nil, avFlagMICPresent))
	}
	blobPairs = appendAVPair(blobPairs, avEOL, nil)
	cc := make([]byte, 8)
	rand.Read(cc)
	temp := append([]byte{1, 1, 0, 0, 0, 0, 0, 0}, ts...)
	temp = append(temp, cc...)
	temp = append(temp, 0, 0, 0, 0)
	temp = append(temp, blobPairs...)
	temp = append(temp, 0, 0, 0, 0)
	rk := ntowfv2(c.password, c.user, c.domain)
	proof := ntProofStr(rk, serverChallenge, temp)
	kek := sessionBaseKeyV2(rk, proof)
	c.exported = make([]byte, 16)
	rand.Read(c.exported)
	encKey := rc4Once(kek, c.exported)

	nt := append(proof, temp...)
	payload := [][]byte{make([]byte, 24), nt, utf16le(c.domain), utf16le(c.user), utf16le("WORKSTATION"), encKey}
	const fixed = 88
	b := make([]byte, fixed)
	copy(b, ntlmSignature)
	binary.LittleEndian.PutUint32(b[8:], messageAuthenticate)
	off := fixed
	for i, p := range payload { // LM, NT, domain, user, workstation, key
		putField(b[12+8*i:], len(p), off)
		off += len(p)
	}
	binary.LittleEndian.PutUint32(b[60:], c.flags)
	copy(b[64:72], windowsVersion)
	for _, p := range payload {
		b = append(b, p...)
	}
	if c.mic {
		mic := computeMIC(c.exported, c.negotiate, challenge, b, 72)
		if c.tamperMIC {
			mic[0] ^= 1
		}
		copy(b[72:88], mic)
	}
	k := deriveKeys(c.flags, c.exported)
	send, _ := rc4.NewCipher(k.ClientSeal)
	recv, _ := rc4.NewCipher(k.ServerSeal)
	c.sess = &sealSession{flags: c.flags, sendSign: k.ClientSign, sendSeal: send, recvSign: k.ServerSign, recvSeal: recv}
	return b
}

func (c *testClient) wrap(tok []byte, first bool) string {
	if !c.spnego {
		return "Negotiate " + base64.StdEncoding.EncodeToString(tok)
	}
	var st spnego.SPNEGOToken
	if first {
		st = spnego.SPNEGOToken{Init: true, NegTokenInit: spnego.NegTokenInit{MechTypes: []asn1.ObjectIdentifier{oidNTLM}, MechTokenBytes: tok}}
	} else {
		st = spnego.SPNEGOToken{Resp: true, NegTokenResp: spnego.NegTokenResp{NegState: asn1.Enumerated(spnego.NegStateAcceptIncomplete), ResponseToken: tok}}
		if c.mechListMIC {
			mic := c.sess.sign(c.mechTypesDER())
			if c.tamperList {
				mic[5] ^= 1
			}
			st.NegTokenResp.MechListMIC = mic
		}
	}
	b, err := st.Marshal()
	if err != nil {
		c.t.Fatal(err)
	}
	return "Negotiate " + base64.StdEncoding.EncodeToString(b)
}

func (c *testClient) mechTypesDER() []byte {
	b, err := asn1.Marshal([]asn1.ObjectIdentifier{oidNTLM})
	if err != nil {
		c.t.Fatal(err)
	}
	return b
}

// finishSPNEGO checks the server's mechListMIC and restarts the client's
// crypto state, as the server does.
func (c *testClient) finishSPNEGO(header string) {
	c.t.Helper()
	_, tok, _ := strings.Cut(header, " ")
	raw, err := base64.StdEncoding.DecodeString(tok)
	if err != nil {
		c.t.Fatal(err)
	}
	var st spnego.SPNEGOToken
	if err := st.Unmarshal(raw); err != nil || !st.Resp {
		c.t.Fatalf("final token: %v", err)
	}
	if st.NegTokenResp.State() != spnego.NegStateAcceptCompleted {
		c.t.Errorf("final negState %d", st.NegTokenResp.State())
	}
	if !c.mechListMIC {
		if len(st.NegTokenResp.MechListMIC) != 0 {
			c.t.Errorf("unrequested mechListMIC")
		}
		return
	}
	if err := c.sess.verify(c.mechTypesDER(), st.NegTokenResp.MechListMIC); err != nil {
		c.t.Fatalf("server mechListMIC: %v", err)
	}
	k := deriveKeys(c.flags, c.exported)
	send, _ := rc4.NewCipher(k.ClientSeal)
	recv, _ := rc4.NewCipher(k.ServerSeal)
	c.sess = &sealSession{flags: c.flags, sendSign: k.ClientSign, sendSeal: send, recvSign: k.ServerSign, recvSeal: recv}
}

func (c *testClient) unwrap(header string) []byte {
	t := c.t
	scheme, tok, _ := strings.Cut(header, " ")
	if scheme != "Negotiate" {
		t.Fatalf("WWW-Authenticate %q", header)
	}
	raw, err := base64.StdEncoding.DecodeString(tok)
	if err != nil {
		t.Fatal(err)
	}
	if !c.spnego {
		return raw
	}
	var st spnego.SPNEGOToken
	if err := st.Unmarshal(raw); err != nil || !st.Resp {
		t.Fatalf("not a NegTokenResp: %v", err)
	}
	if !st.NegTokenResp.SupportedMech.Equal(oidNTLM) {
		t.Errorf("supportedMech %v", st.NegTokenResp.SupportedMech)
	}
	return st.NegTokenResp.ResponseToken
}

func (c *testClient) do(authz, contentType string, body []byte) (*http.Response, []byte) {
	c.t.Helper()
	req, err := http.NewRequest(http.MethodPost, c.url+"/wsman", bytes.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("POST: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, b
}

// login runs NEGOTIATE/AUTHENTICATE; the AUTHENTICATE carries body (empty or sealed by sealBody).
func (c *testClient) login(sealFirst string) (*http.Response, []byte) {
	resp, _ := c.do(c.wrap(c.negotiateMessage(), true), "", nil)
	if resp.StatusCode != 401 {
		c.t.Fatalf("NEGOTIATE: status %d", resp.StatusCode)
	}
	challenge := c.unwrap(resp.Header.Get("WWW-Authenticate"))
	authz := c.wrap(c.authenticateMessage(challenge), false)
	if sealFirst == "" {
		resp, body := c.do(authz, "", nil)
		if c.spnego && resp.StatusCode == 200 {
			c.finishSPNEGO(resp.Header.Get("WWW-Authenticate"))
		}
		return resp, body
	}
	return c.do(authz, EncryptedContentType, c.sealBody(sealFirst))
}

func (c *testClient) sealBody(plain string) []byte {
	sealed, sig := c.sess.seal([]byte(plain))
	return closeEncrypted(appendEncryptedPart(nil, soapContentType, len(plain), sealedPayload(sig, sealed)))
}

func (c *testClient) openResponse(resp *http.Response, body []byte) string {
	c.t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != EncryptedContentType {
		c.t.Fatalf("response Content-Type %q (status %d, body %q)", ct, resp.StatusCode, body)
	}
	parts, err := parseEncrypted(body)
	if err != nil {
		c.t.Fatalf("response framing: %v", err)
	}
	var out []byte
	for _, p := range parts {
		m, err := c.sess.unseal(p.Sealed, p.Signature)
		if err != nil {
			c.t.Fatalf("response unseal: %v", err)
		}
		out = append(out, m...)
	}
	return string(out)
}

func newSealedServer(t *testing.T, rec *attempts) (*Auth, *httptest.Server) {
	t.Helper()
	o := labOptions(rec)
	o.RequireSealing = true
	a := New(o)
	srv := httptest.NewUnstartedServer(a.Wrap(echoSOAP))
	a.Configure(srv.Config)
	srv.Start()
	t.Cleanup(srv.Close)
	return a, srv
}

func newTestClient(t *testing.T, srv *httptest.Server) *testClient {
	tr := &http.Transport{MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1}
	t.Cleanup(tr.CloseIdleConnections)
	return &testClient{
		t: t, user: "svcwatch", domain: "LAB", password: "S3cret!pw", mic: true,
		http: &http.Client{Timeout: 10 * time.Second, Transport: tr}, url: srv.URL,
	}
}

func TestSealedHTTP(t *testing.T) {
	for _, mode := range []string{"raw", "spnego", "spnego+mechListMIC"} {
		t.Run(mode, func(t *testing.T) {
			wrapped := mode != "raw"
			rec := &attempts{}
			a, srv := newSealedServer(t, rec)
			c := newTestClient(t, srv)
			c.spnego = wrapped
			c.mechListMIC = mode == "spnego+mechListMIC"

			resp, body := c.login("")
			if resp.StatusCode != 200 || len(body) != 0 {
				t.Fatalf("AUTHENTICATE: status %d body %q", resp.StatusCode, body)
			}
			if c.flags&(flagKeyExch|flagSeal|flagSign|flag128) != flagKeyExch|flagSeal|flagSign|flag128 {
				t.Errorf("challenge flags %#x do not echo KEY_EXCH/SEAL/SIGN/128", c.flags)
			}
			wantPairs := map[uint16]string{avNbDomainName: "LAB", avNbComputerName: "DC01", avDNSDomainName: "lab.example", avDNSComputerName: "dc01.lab.example"}
			for _, p := range c.challengeTargetInfoPairs {
				if w, ok := wantPairs[p.ID]; ok {
					if got, _ := fromUTF16le(p.Value); got != w {
						t.Errorf("AV pair %d = %q, want %q", p.ID, got, w)
					}
					delete(wantPairs, p.ID)
				}
			}
			if len(wantPairs) != 0 {
				t.Errorf("AV pairs missing: %v", wantPairs)
			}
			if wrapped && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Negotiate ") {
				t.Errorf("no final SPNEGO token: %q", resp.Header.Get("WWW-Authenticate"))
			}

			for i := range 3 {
				msg := fmt.Sprintf("<s:Envelope>message %d</s:Envelope>", i)
				resp, body := c.do("", EncryptedContentType, c.sealBody(msg))
				if resp.StatusCode != 200 {
					t.Fatalf("sealed message %d: status %d", i, resp.StatusCode)
				}
				got := c.openResponse(resp, body)
				want := fmt.Sprintf(`user=LAB\svcwatch method=ntlm type=%s body=%s`, soapContentType, msg)
				if got != want {
					t.Fatalf("message %d answer %q, want %q", i, got, want)
				}
			}
			if c.sess.sendSeq != 3 || c.sess.recvSeq != 3 {
				t.Errorf("client sequence numbers %d/%d", c.sess.sendSeq, c.sess.recvSeq)
			}
			if rec.count(true) != 1 || a.Contexts() != 1 {
				t.Errorf("handshakes %d, contexts %d", rec.count(true), a.Contexts())
			}

			// Closing the connection drops its context.
			c.http.Transport.(*http.Transport).CloseIdleConnections()
			deadline := time.Now().Add(5 * time.Second)
			for a.Contexts() != 0 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if a.Contexts() != 0 {
				t.Errorf("%d contexts after the connection closed", a.Contexts())
			}
		})
	}
}

func TestSealedAuthenticateCarriesBody(t *testing.T) {
	_, srv := newSealedServer(t, &attempts{})
	c := newTestClient(t, srv)
	resp, body := c.login("<s:Envelope>first</s:Envelope>")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if got := c.openResponse(resp, body); !strings.HasSuffix(got, "body=<s:Envelope>first</s:Envelope>") {
		t.Errorf("answer %q", got)
	}
}

func TestSealedFailures(t *testing.T) {
	tests := []struct {
		name string
		// step runs after a successful login and returns the status of the
		// offending request.
		step       func(c *testClient) *http.Response
		wantStatus int
	}{
		{"plaintext refused on HTTP", func(c *testClient) *http.Response {
			resp, _ := c.do("", soapContentType, []byte("<s:Envelope/>"))
			return resp
		}, 401},
		{"tampered ciphertext", func(c *testClient) *http.Response {
			b := c.sealBody("<s:Envelope>x</s:Envelope>")
			b[bytes.Index(b, []byte("octet-stream\r\n"))+len("octet-stream\r\n")+4+16] ^= 1
			resp, _ := c.do("", EncryptedContentType, b)
			return resp
		}, 400},
		{"replayed message", func(c *testClient) *http.Response {
			b := c.sealBody("<s:Envelope>x</s:Envelope>")
			if resp, _ := c.do("", EncryptedContentType, b); resp.StatusCode != 200 {
				c.t.Fatalf("first send: %d", resp.StatusCode)
			}
			resp, _ := c.do("", EncryptedContentType, b)
			return resp
		}, 400},
		{"skipped sequence number", func(c *testClient) *http.Response {
			c.sealBody("lost")
			resp, _ := c.do("", EncryptedContentType, c.sealBody("<s:Envelope>x</s:Envelope>"))
			return resp
		}, 400},
		{"length mismatch", func(c *testClient) *http.Response {
			b := c.sealBody("<s:Envelope>x</s:Envelope>")
			b = bytes.Replace(b, []byte("Length=26"), []byte("Length=99"), 1)
			resp, _ := c.do("", EncryptedContentType, b)
			return resp
		}, 400},
		{"garbage framing", func(c *testClient) *http.Response {
			resp, _ := c.do("", EncryptedContentType, []byte("--Encrypted Boundary\r\nnonsense"))
			return resp
		}, 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, srv := newSealedServer(t, &attempts{})
			c := newTestClient(t, srv)
			if resp, _ := c.login(""); resp.StatusCode != 200 {
				t.Fatalf("login: %d", resp.StatusCode)
			}
			got := tc.step(c)
			if got.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d", got.StatusCode, tc.wantStatus)
			}
			if got.StatusCode == 400 && !got.Close {
				t.Errorf("400 without closing the connection")
			}
			// The context is gone: the next sealed message has to log on again.
			resp, _ := c.do("", EncryptedContentType, c.sealBody("<s:Envelope>after</s:Envelope>"))
			if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != "Negotiate" {
				t.Errorf("after failure: status %d WWW-Authenticate %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
			}
			if a.Contexts() > 1 {
				t.Errorf("%d contexts", a.Contexts())
			}
			// And a new logon on the same connection works.
			c2 := newTestClient(t, srv)
			c2.http = c.http
			if resp, _ := c2.login(""); resp.StatusCode != 200 {
				t.Errorf("re-login: %d", resp.StatusCode)
			}
		})
	}
}

func TestNTLMHandshakeFailures(t *testing.T) {
	tests := []struct {
		name  string
		setup func(c *testClient)
	}{
		{"bad MIC", func(c *testClient) { c.tamperMIC = true }},
		{"wrong password", func(c *testClient) { c.password = "wrong" }},
		{"unknown user", func(c *testClient) { c.user = "mallory" }},
		{"bad SPNEGO mechListMIC", func(c *testClient) { c.spnego, c.mechListMIC, c.tamperList = true, true, true }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := &attempts{}
			_, srv := newSealedServer(t, rec)
			c := newTestClient(t, srv)
			tc.setup(c)
			resp, body := c.login("")
			if resp.StatusCode != 401 || len(body) != 0 || resp.Header.Get("WWW-Authenticate") != "Negotiate" {
				t.Fatalf("status %d body %q WWW-Authenticate %q", resp.StatusCode, body, resp.Header.Get("WWW-Authenticate"))
			}
			if rec.count(false) != 1 {
				t.Errorf("attempts %+v", rec.all)
			}
		})
	}

	t.Run("AUTHENTICATE without NEGOTIATE", func(t *testing.T) {
		_, srv := newSealedServer(t, &attempts{})
		c := newTestClient(t, srv)
		c.negotiateMessage()
		// A challenge from another server instance.
		other := New(labOptions(&attempts{}))
		p, err := other.ntlmChallenge(c.negotiate)
		if err != nil {
			t.Fatal(err)
		}
		resp, _ := c.do(c.wrap(c.authenticateMessage(p.challenge), false), "", nil)
		if resp.StatusCode != 401 {
			t.Errorf("status %d", resp.StatusCode)
		}
	})
}

// TestRequireSealingAllowsTLS: AllowUnencrypted=false does not apply to HTTPS.
func TestRequireSealingAllowsTLS(t *testing.T) {
	o := labOptions(&attempts{})
	o.RequireSealing = true
	a := New(o)
	srv := startTLS(t, a, nil)
	c := &testClient{t: t, user: "svcwatch", domain: "LAB", password: "S3cret!pw", http: srv.Client(), url: srv.URL}
	if resp, _ := c.login(""); resp.StatusCode != 200 {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	resp, body := c.do("", soapContentType, []byte("<s:Envelope/>"))
	if resp.StatusCode != 200 || !strings.HasSuffix(string(body), "body=<s:Envelope/>") {
		t.Fatalf("status %d body %q", resp.StatusCode, body)
	}
}
