package winrm

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/svcwatch/svcwatch/internal/config"
	"github.com/svcwatch/svcwatch/internal/testutil"
)

func TestCheck(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(f *fakeHost, pw *string)
		lastOK bool
		last   string
		remedy string
		nsteps int
	}{
		{name: "healthy", setup: func(f *fakeHost, _ *string) {}, lastOK: true, last: "services", nsteps: 7},
		{name: "wrong password", setup: func(_ *fakeHost, pw *string) { *pw = "nope" }, last: "authentication", remedy: "Remote Management Users", nsteps: 4},
		{name: "no WinRM rights", setup: func(f *fakeHost, _ *string) { f.faultOn, f.fault = actCreate, []byte(accessDeniedFault) }, last: "WinRM permission", remedy: "Event Log Readers", nsteps: 5},
		{name: "log unreadable", setup: func(f *fakeHost, _ *string) {
			f.stdout = func(string) string {
				a := validAnswer()
				a["events"] = []any{}
				a["errors"] = []any{"events: Attempted to perform an unauthorized operation."}
				return string(encode(t, a))
			}
		}, lastOK: true, last: "services", nsteps: 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeHost(t)
			f.stdout = func(string) string { return string(encode(t, validAnswer())) }
			cfg := startTLS(t, f)
			pw := "s3cret"
			tt.setup(f, &pw)
			steps := Check(context.Background(), cfg, pw, "dc01.corp.example")
			var b strings.Builder
			for _, s := range steps {
				b.WriteString(s.Name + " ok=" + map[bool]string{true: "y", false: "n"}[s.OK] + " " + s.Detail + " | " + s.Remedy + "\n")
			}
			t.Log("\n" + b.String())
			if len(steps) != tt.nsteps {
				t.Fatalf("%d steps, want %d", len(steps), tt.nsteps)
			}
			last := steps[len(steps)-1]
			if last.Name != tt.last || last.OK != tt.lastOK || !strings.Contains(last.Remedy, tt.remedy) {
				t.Errorf("last step %+v", last)
			}
			for _, s := range steps[:len(steps)-1] {
				if !s.OK && tt.name != "log unreadable" {
					t.Errorf("step %s failed before the last: %+v", s.Name, s)
				}
				if !s.OK && s.Remedy == "" {
					t.Errorf("failed step %s has no remedy", s.Name)
				}
			}
			if tt.name == "healthy" && !strings.Contains(steps[2].Detail, "chain verified") {
				t.Errorf("TLS step: %+v", steps[2])
			}
			if tt.name == "log unreadable" && (steps[5].OK || !strings.Contains(steps[5].Remedy, "Event Log Readers")) {
				t.Errorf("System log step: %+v", steps[5])
			}
		})
	}
	t.Run("wrong CA", func(t *testing.T) {
		f := newFakeHost(t)
		cfg := startTLS(t, f)
		cfg.TLSServerName = "dc01.corp.example" // not a name on httptest's certificate
		steps := Check(context.Background(), cfg, "s3cret", "dc01.corp.example")
		last := steps[len(steps)-1]
		if last.Name != "TLS" || last.OK || !strings.Contains(last.Remedy, "ca_file") {
			t.Fatalf("steps %+v", steps)
		}
	})
}

func TestCheckQuotaOnCreate(t *testing.T) {
	f := newFakeHost(t)
	f.faultOn, f.fault = actCreate, readShared(t, "wire/wsman/fault-quotalimit-2150859173-max-shells.winrb-wmi_error_v2.xml")
	steps := Check(context.Background(), startTLS(t, f), "s3cret", "dc01.corp.example")
	last := steps[len(steps)-1]
	if last.OK || last.Name != "authentication" || !strings.Contains(last.Remedy, "back off") {
		t.Fatalf("steps %+v", steps)
	}
}

// Over http only NTLM encrypts the messages; check must not claim it does
// for Basic or Kerberos accepted with allow_insecure.
func TestCheckHTTPSaysWhatProtectsTheTraffic(t *testing.T) {
	addr := testutil.ServeTCP(t, func(net.Conn) {}) // accepts and hangs up
	for _, tt := range []struct{ auth, want string }{
		{"ntlm", "NTLM message encryption"},
		{"basic", "clear text"},
	} {
		cfg := config.WinRM{Scheme: "http", Auth: tt.auth, Username: `CORP\svc`, AllowInsecure: true, ConnectTo: addr, Timeout: 5 * time.Second}
		steps := Check(context.Background(), cfg, "pw", "dc01.corp.example")
		if len(steps) < 3 || steps[2].Name != "TLS" || !strings.Contains(steps[2].Detail, tt.want) {
			t.Errorf("auth %s: steps %+v, want the TLS step to say %q", tt.auth, steps, tt.want)
		}
	}
}
