package lab

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/svcwatch/svcwatch/internal/config"
	"github.com/svcwatch/svcwatch/internal/directory"
	"github.com/svcwatch/svcwatch/internal/inventory"
	"github.com/svcwatch/svcwatch/internal/lab/winhost"
	"github.com/svcwatch/svcwatch/internal/winrm"
)

func startLab(t *testing.T, opts Options) *Lab {
	t.Helper()
	opts.Small = true
	l, err := Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return l
}

func TestStartDefaults(t *testing.T) {
	l := startLab(t, Options{})
	want := []string{"dc01.lab.example", "dc02.lab.example", "dc03.lab.example", "srv01.lab.example", "srv02.lab.example"}
	if got := l.HostNames(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("hosts %v, want %v", got, want)
	}
	if l.Host("DC02").Role() != winhost.RoleDC || l.Host("srv01.lab.example").Role() != winhost.RoleMember || l.Host("dc09") != nil {
		t.Error("roles or lookup wrong")
	}
	if !strings.HasPrefix(l.Host("dc01").InstallerSID(), l.Directory().DomainSID()+"-") {
		t.Errorf("installer SID %s outside the domain %s", l.Host("dc01").InstallerSID(), l.Directory().DomainSID())
	}
	for _, name := range []string{passwordFileName, ldapPasswordName, caFileName} {
		fi, err := os.Stat(filepath.Join(l.Dir(), name))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v mode %v", name, err, fi.Mode())
		}
	}
	dir := l.Dir()
	l.Close()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("temp dir %s left behind", dir)
	}
}

func TestRODC(t *testing.T) {
	l := startLab(t, Options{RODCs: 1})
	cfg := l.Config()
	s, _ := cfg.ReadSecrets()
	d, err := directory.New(cfg.Directory, s.LDAPPassword, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := d.Discover(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range res.Hosts {
		if h.Name == "rodc01.lab.example" {
			if len(h.Reasons) == 0 || h.Reasons[0].Kind != inventory.ReasonRODC {
				t.Errorf("rodc01 reasons %v", h.Reasons)
			}
			return
		}
	}
	t.Errorf("rodc01 not discovered: %v", res.Hosts)
}

func TestHostsOption(t *testing.T) {
	l := startLab(t, Options{Hosts: 7})
	dcs := 0
	for _, h := range l.Hosts() {
		if h.Role() == winhost.RoleDC {
			dcs++
		}
	}
	if len(l.Hosts()) != 7 || dcs != 3 {
		t.Errorf("%d hosts, %d DCs", len(l.Hosts()), dcs)
	}
}

// TestConfigDrivesTheRealClients points svcwatch's own directory and winrm
// packages at the lab with nothing but Config and its secret files.
func TestConfigDrivesTheRealClients(t *testing.T) {
	for _, mode := range []struct{ scheme, auth string }{{"https", "ntlm"}, {"http", "ntlm"}, {"https", "basic"}, {"https", "certificate"}} {
		t.Run(mode.scheme+"+"+mode.auth, func(t *testing.T) {
			l := startLab(t, Options{Scheme: mode.scheme, Auth: mode.auth})
			cfg := l.Config()
			secrets, err := cfg.ReadSecrets()
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()

			dir, err := directory.New(cfg.Directory, secrets.LDAPPassword, nil)
			if err != nil {
				t.Fatal(err)
			}
			res, err := dir.Discover(ctx)
			if err != nil {
				t.Fatalf("discover: %v", err)
			}
			var names []string
			for _, h := range res.Hosts {
				names = append(names, h.Name)
			}
			if strings.Join(names, ",") != strings.Join(l.HostNames(), ",") {
				t.Errorf("discovered %v, lab has %v (warnings %v)", names, l.HostNames(), res.Warnings)
			}

			c, err := winrm.New(cfg.WinRM, secrets.WinRMPassword, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			host := res.Hosts[0]
			first, err := c.Collect(ctx, host, inventory.CollectRequest{Lookback: time.Hour, MaxEvents: 100})
			if err != nil {
				t.Fatalf("collect: %v", err)
			}
			lh := l.Host(host.Name)
			if first.Digest != lh.Digest() || len(first.Services) != len(lh.Services()) {
				t.Fatalf("observation digest %s (%d services), host %s (%d)", first.Digest, len(first.Services), lh.Digest(), len(lh.Services()))
			}
			if err := lh.Apply(winhost.ScenarioPsExec); err != nil {
				t.Fatal(err)
			}
			next, err := c.Collect(ctx, host, inventory.CollectRequest{Watermark: first.Log.NewestRecord, Digest: first.Digest, Lookback: time.Hour, MaxEvents: 100})
			if err != nil {
				t.Fatalf("collect after psexec: %v", err)
			}
			if len(next.Events) != 1 || next.Events[0].Field(0) != "PSEXESVC" || next.Services == nil {
				t.Errorf("after psexec: %d events, services %v", len(next.Events), next.Services != nil)
			}
			st := l.WSMan().Stats(host.Name)
			if st.Requests == 0 || st.WireIn == 0 || st.Faults != 0 {
				t.Errorf("traffic %+v", st)
			}
		})
	}
}

func TestConfigYAMLLoads(t *testing.T) {
	l := startLab(t, Options{})
	b, err := l.ConfigYAML()
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{l.Password(), l.Slack().Token()} {
		if strings.Contains(string(b), secret) {
			t.Fatal("a secret is written into the config file")
		}
	}
	path := filepath.Join(t.TempDir(), "svcwatch.yaml")
	if err := l.WriteConfig(path); err != nil {
		t.Fatal(err)
	}
	loaded, err := config.Load(path)
	if err != nil {
		t.Fatalf("config.Load of the lab config: %v\n%s", err, b)
	}
	want := l.Config()
	if loaded.WinRM != want.WinRM || loaded.Poll != want.Poll || loaded.Slack.APIURL != want.Slack.APIURL ||
		loaded.Directory.URLs[0] != want.Directory.URLs[0] || loaded.State != want.State {
		t.Errorf("loaded config differs from Config():\n%+v\n%+v", loaded.WinRM, want.WinRM)
	}
	if s, err := loaded.ReadSecrets(); err != nil || s.WinRMPassword != l.Password() || s.SlackToken != l.Slack().Token() {
		t.Errorf("secrets from the written config: %v", err)
	}
}

func TestControlAPI(t *testing.T) {
	l := startLab(t, Options{})
	srv := httptest.NewServer(l.Handler())
	defer srv.Close()
	call := func(method, path, body string) (int, map[string]any, string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var m map[string]any
		json.Unmarshal(raw, &m)
		return resp.StatusCode, m, string(raw)
	}
	tests := []struct {
		method, path, body string
		status             int
		check              func(t *testing.T)
	}{
		{"POST", "/hosts/dc01/scenarios/psexec", "", 200, func(t *testing.T) {
			if _, ok := l.Host("dc01").Service("PSEXESVC"); !ok {
				t.Error("psexec not applied")
			}
		}},
		{"POST", "/hosts/dc02.lab.example/scenarios/binpath-hijack", "", 200, func(t *testing.T) {
			if s, _ := l.Host("dc02").Service(winhost.HijackTarget()); s.ImagePath != winhost.HijackedImagePath {
				t.Error("hijack not applied")
			}
		}},
		{"POST", "/hosts/dc01/scenarios/ransomware", "", 404, nil},
		{"POST", "/hosts/nope/scenarios/psexec", "", 404, nil},
		{"GET", "/hosts/dc01/scenarios/psexec", "", 405, nil},
		{"POST", "/hosts/srv01/down", "", 200, func(t *testing.T) {
			if !l.Host("srv01").Down() {
				t.Error("not down")
			}
		}},
		{"POST", "/hosts/srv01/up", "", 200, func(t *testing.T) {
			if l.Host("srv01").Down() {
				t.Error("still down")
			}
		}},
		{"POST", "/hosts/dc03/faults/quota", "", 200, func(t *testing.T) {
			if l.Host("dc03").Fault() != winhost.FaultQuota {
				t.Error("fault not set")
			}
		}},
		{"POST", "/hosts/dc03/faults/none", "", 200, func(t *testing.T) {
			if l.Host("dc03").Fault() != "" {
				t.Error("fault not cleared")
			}
		}},
		{"POST", "/hosts/dc03/faults/meteor", "", 404, nil},
		{"POST", "/hosts/dc03/log/config?max_bytes=1048576&retention=circular", "", 200, nil},
		{"POST", "/hosts/dc03/log/noise?count=5000", "", 200, func(t *testing.T) {
			if li := l.Host("dc03").LogInfo(); li.NewestRecord-li.OldestRecord+1 != 1024 {
				t.Errorf("log after wrap: %+v", li)
			}
		}},
		{"POST", "/hosts/dc03/log/noise?count=0", "", 400, nil},
		{"POST", "/hosts/dc03/log/config?max_bytes=10&retention=circular", "", 400, nil},
		{"POST", "/hosts/dc03/log/reset", "", 200, func(t *testing.T) {
			if li := l.Host("dc03").LogInfo(); li.OldestRecord != 1 {
				t.Errorf("log after reset: %+v", li)
			}
		}},
		{"POST", "/directory/computers", `{"name":"dc04","role":"dc"}`, 201, func(t *testing.T) {
			if h := l.Host("dc04.lab.example"); h == nil || h.Role() != winhost.RoleDC || !l.InDirectory("dc04") {
				t.Error("dc04 not added")
			}
		}},
		{"POST", "/directory/computers", `{"name":"dc04","role":"dc"}`, 409, nil},
		{"POST", "/directory/computers", `{"name":"bad name!"}`, 400, nil},
		{"POST", "/directory/computers", `{"name":"x","colour":"red"}`, 400, nil},
		{"DELETE", "/directory/computers/srv02", "", 200, func(t *testing.T) {
			if l.InDirectory("srv02") || l.Host("srv02") == nil {
				t.Error("srv02 should leave the directory and keep answering")
			}
		}},
		{"DELETE", "/directory/computers/srv02", "", 404, nil},
		{"POST", "/slack/fail?status=503&count=1", "", 200, nil},
		{"GET", "/slack/messages", "", 200, nil},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			status, _, raw := call(tt.method, tt.path, tt.body)
			if status != tt.status {
				t.Fatalf("status %d, want %d: %s", status, tt.status, raw)
			}
			if tt.check != nil {
				tt.check(t)
			}
		})
	}
	t.Run("GET /hosts", func(t *testing.T) {
		resp, err := http.Get(srv.URL + "/hosts")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var hosts []HostStatus
		if err := json.NewDecoder(resp.Body).Decode(&hosts); err != nil {
			t.Fatal(err)
		}
		byName := map[string]HostStatus{}
		for _, h := range hosts {
			byName[h.Name] = h
		}
		if len(hosts) != 6 || byName["dc01.lab.example"].Scenarios[0] != "psexec" || byName["srv02.lab.example"].InDirectory ||
			byName["dc04.lab.example"].Role != RoleDC || byName["dc01.lab.example"].Digest == "" {
			t.Errorf("hosts: %+v", hosts)
		}
	})
}

func TestLoopbackOnly(t *testing.T) {
	l := startLab(t, Options{})
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/hosts", nil)
	req.RemoteAddr = "192.0.2.10:51000"
	l.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusForbidden {
		t.Errorf("remote client got %d", rec.Code)
	}
}

func TestServe(t *testing.T) {
	if err := Serve(context.Background(), Options{}, "", "0.0.0.0:0"); err == nil {
		t.Error("a non-loopback control address was accepted")
	}
	ctx, cancel := context.WithCancel(context.Background())
	out := filepath.Join(t.TempDir(), "lab.yaml")
	type ready struct {
		l    *Lab
		addr string
	}
	readyc := make(chan ready, 1)
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, Options{Small: true, Ready: func(l *Lab, addr string) { readyc <- ready{l, addr} }}, out, "127.0.0.1:0")
	}()
	var r ready
	select {
	case r = <-readyc:
	case err := <-done:
		t.Fatalf("serve: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not become ready")
	}
	if _, err := config.Load(out); err != nil {
		t.Errorf("config written by Serve: %v", err)
	}
	resp, err := http.Post("http://"+r.addr+"/hosts/dc01/scenarios/mimidrv", "", nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("control API: %v %v", err, resp)
	}
	resp.Body.Close()
	if _, ok := r.l.Host("dc01").Service("mimidrv"); !ok {
		t.Error("scenario through Serve's control API not applied")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop")
	}
}

func TestCloseEndsSlowPolls(t *testing.T) {
	l := startLab(t, Options{})
	cfg := l.Config()
	cfg.WinRM.Timeout = time.Minute
	c, err := winrm.New(cfg.WinRM, l.Password(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	l.Host("dc01").SetFault(winhost.FaultSlow) // two minutes by default
	errc := make(chan error, 1)
	go func() {
		_, err := c.Collect(context.Background(), inventory.Host{Name: "dc01.lab.example"}, inventory.CollectRequest{MaxEvents: 10})
		errc <- err
	}()
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	l.Close()
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Close took %v with a slow poll in flight", d)
	}
	select {
	case err := <-errc:
		if err == nil {
			t.Error("a poll cut by Close succeeded")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the poll did not end after Close")
	}
}

func TestInstallerSIDResolves(t *testing.T) {
	l := startLab(t, Options{})
	cfg := l.Config()
	s, err := cfg.ReadSecrets()
	if err != nil {
		t.Fatal(err)
	}
	d, err := directory.New(cfg.Directory, s.LDAPPassword, nil)
	if err != nil {
		t.Fatal(err)
	}
	acct, err := d.ResolveSID(context.Background(), l.Host("dc01").InstallerSID())
	if err != nil || acct.Name != `LAB\`+AttackerUser {
		t.Errorf("installer %+v, %v; want LAB\\%s", acct, err, AttackerUser)
	}
}

func TestCloseLeavesNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	l, err := Start(context.Background(), Options{Small: true})
	if err != nil {
		t.Fatal(err)
	}
	cfg := l.Config()
	c, err := winrm.New(cfg.WinRM, l.Password(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range l.HostNames() {
		if _, err := c.Collect(context.Background(), inventory.Host{Name: name}, inventory.CollectRequest{MaxEvents: 10}); err != nil {
			t.Fatal(err)
		}
	}
	c.Close()
	l.Close()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines after Close, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}
