package wsauth_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	ntlmssp "github.com/Azure/go-ntlmssp"

	"github.com/svcwatch/svcwatch/internal/lab/wsauth"
)

// Wrapping a WS-Management handler for an HTTPS listener with NTLM and Basic.
func ExampleAuth_Wrap() {
	auth := wsauth.New(wsauth.Options{
		Users:  map[string]string{`LAB\svcwatch`: "S3cret!pw"},
		Domain: "LAB", DNSDomain: "lab.example", ServerName: "DC01",
		Basic: true,
	})
	soap := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s via %s", wsauth.User(r.Context()), wsauth.Method(r.Context()))
	})
	srv := httptest.NewUnstartedServer(auth.Wrap(soap))
	auth.Configure(srv.Config) // contexts per TCP connection, HTTP/1.1 only
	srv.StartTLS()
	defer srv.Close()

	client := &http.Client{Transport: ntlmssp.Negotiator{RoundTripper: srv.Client().Transport}}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/wsman", strings.NewReader("<s:Envelope/>"))
	req.SetBasicAuth(`LAB\svcwatch`, "S3cret!pw") // go-ntlmssp turns these into NTLM
	resp, err := client.Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, string(body))
	// Output: 200 hello LAB\svcwatch via ntlm
}
