package winrm

import (
	"net/http"
)

// basicAuth sends user and password as Basic credentials.
type basicAuth struct{ user, password string }

func (a basicAuth) authorize(req *http.Request, _ string) error {
	req.SetBasicAuth(a.user, a.password)
	return nil
}

// certAuth: the TLS client certificate authenticates; WinRM wants this header.
type certAuth struct{}

func (certAuth) authorize(req *http.Request, _ string) error {
	req.Header.Set("Authorization", "http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/https/mutual")
	return nil
}
