package winrm

import (
	"context"
	"crypto/tls"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/svcwatch/svcwatch/internal/config"
	"github.com/svcwatch/svcwatch/internal/inventory"
	"github.com/svcwatch/svcwatch/internal/lab/winhost"
	"github.com/svcwatch/svcwatch/internal/lab/wsauth"
	"github.com/svcwatch/svcwatch/internal/lab/wsman"
)

// labServer runs the lab's WS-Management server (simulated Windows hosts,
// server-side NTLM/Basic) on 127.0.0.1, over TLS or plain HTTP.
func labServer(t *testing.T, tlsOn bool, hosts ...*winhost.Host) (addr, caFile string) {
	return labServerWith(t, tlsOn, nil, hosts...)
}

func labServerWith(t *testing.T, tlsOn bool, mod func(*wsauth.Options, *tls.Config), hosts ...*winhost.Host) (addr, caFile string) {
	addr, caFile, _ = labServerWS(t, tlsOn, mod, hosts...)
	return addr, caFile
}

// labServerWS is labServerWith that also returns the WS-Management server
// (shells, traffic counters), behind its Front so wire bytes are counted.
func labServerWS(t *testing.T, tlsOn bool, mod func(*wsauth.Options, *tls.Config), hosts ...*winhost.Host) (addr, caFile string, ws *wsman.Server) {
	t.Helper()
	byName := map[string]*winhost.Host{}
	for _, h := range hosts {
		byName[h.Name()] = h
	}
	ws = wsman.NewServer(wsman.ResolverFunc(func(name string) (*winhost.Host, bool) {
		h, ok := byName[strings.ToLower(name)]
		return h, ok
	}), wsman.WithUser(func(r *http.Request) string { return wsauth.User(r.Context()) }))
	opts := wsauth.Options{
		Users:  map[string]string{`LAB\svcwatch`: "Lab-Passw0rd!"},
		Domain: "LAB", DNSDomain: "lab.example", ServerName: "DC01",
		Basic: true, RequireSealing: true,
	}
	tc := &tls.Config{}
	if mod != nil {
		mod(&opts, tc)
	}
	auth := wsauth.New(opts)
	srv := httptest.NewUnstartedServer(ws.Front(auth.Wrap(ws)))
	srv.TLS = tc
	srv.Config.ConnState = auth.ConnState
	if tlsOn {
		srv.StartTLS()
		caFile = filepath.Join(t.TempDir(), "ca.pem")
		if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
			t.Fatal(err)
		}
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	t.Cleanup(ws.Close)
	return srv.Listener.Addr().String(), caFile, ws
}

func TestCollectFromLab(t *testing.T) {
	dc := winhost.New("dc01.lab.example", winhost.Options{Role: winhost.RoleDC, Small: true})
	httpsAddr, ca := labServer(t, true, dc)
	httpAddr, _ := labServer(t, false, dc)
	base := config.WinRM{Username: `LAB\svcwatch`, CAFile: ca, TLSServerName: "example.com", Timeout: 20 * time.Second}
	tests := []struct {
		name string
		mod  func(c *config.WinRM)
	}{
		{"https+ntlm", func(c *config.WinRM) { c.Scheme, c.Auth, c.ConnectTo = "https", "ntlm", httpsAddr }},
		{"https+basic", func(c *config.WinRM) { c.Scheme, c.Auth, c.ConnectTo = "https", "basic", httpsAddr }},
		{"http+ntlm sealed", func(c *config.WinRM) { c.Scheme, c.Auth, c.ConnectTo = "http", "ntlm", httpAddr }},
	}
	host := inventory.Host{Name: "dc01.lab.example"}
	for _, mode := range sessionModes {
		for _, tt := range tests {
			t.Run(mode+"/"+tt.name, func(t *testing.T) {
				cfg := base
				cfg.Session = mode
				tt.mod(&cfg)
				collectFromLab(t, cfg, dc, host)
			})
		}
	}
}

func collectFromLab(t *testing.T, cfg config.WinRM, dc *winhost.Host, host inventory.Host) {
	c, err := New(cfg, "Lab-Passw0rd!", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	first, err := c.Collect(ctx, host, inventory.CollectRequest{Lookback: time.Hour, MaxEvents: 500})
	if err != nil {
		t.Fatalf("baseline: %v", err)
	}
	if len(first.Services) == 0 || !isDigest(first.Digest) || first.Log.NewestRecord == 0 {
		t.Fatalf("baseline observation: %d services, digest %q, log %+v", len(first.Services), first.Digest, first.Log)
	}
	wm := first.Log.NewestRecord
	// Unchanged host: digest echoed, no inventory.
	again, err := c.Collect(ctx, host, inventory.CollectRequest{Watermark: wm, Digest: first.Digest, MaxEvents: 500})
	if err != nil {
		t.Fatalf("second poll: %v", err)
	}
	if again.Services != nil || again.Digest != first.Digest || len(again.Events) != 0 {
		t.Fatalf("unchanged host answered %d services, %d events", len(again.Services), len(again.Events))
	}
	if err := dc.Apply("psexec"); err != nil {
		t.Fatal(err)
	}
	after, err := c.Collect(ctx, host, inventory.CollectRequest{Watermark: wm, Digest: first.Digest, MaxEvents: 500})
	if err != nil {
		t.Fatalf("after psexec: %v", err)
	}
	found := false
	for _, ev := range after.Events {
		if in, ok := ev.Install(); ok && strings.Contains(strings.ToUpper(in.ServiceName+in.ImagePath), "PSEXE") {
			found = true
		}
		if ev.RecordID <= wm {
			t.Errorf("event %d not after watermark %d", ev.RecordID, wm)
		}
	}
	if !found {
		t.Errorf("no 7045 for PSEXESVC after the scenario: %+v", after.Events)
	}
}

func TestCollectFromLabFaults(t *testing.T) {
	kinds := map[string]error{
		"garbage":       ErrProtocol,
		"truncated":     ErrProtocol,
		"huge":          ErrOutputTooLarge,
		"quota":         ErrQuota,
		"access-denied": ErrAccessDenied,
		"slow":          ErrTimeout,
		"shell-leak":    nil, // checked by text below
	}
	for _, mode := range sessionModes {
		for kind, want := range kinds {
			t.Run(mode+"/"+kind, func(t *testing.T) { collectFromLabFault(t, mode, kind, want) })
		}
	}
}

func collectFromLabFault(t *testing.T, mode, kind string, want error) {
	bad := winhost.New("dc02.lab.example", winhost.Options{Role: winhost.RoleDC, Small: true})
	good := winhost.New("dc03.lab.example", winhost.Options{Role: winhost.RoleDC, Small: true})
	if err := bad.SetFault(kind); err != nil {
		t.Skipf("lab has no fault %q: %v", kind, err)
	}
	addr, ca := labServer(t, true, bad, good)
	cfg := config.WinRM{Scheme: "https", Auth: "ntlm", Username: `LAB\svcwatch`, CAFile: ca, TLSServerName: "example.com",
		ConnectTo: addr, Timeout: 15 * time.Second, MaxOutputBytes: 1 << 20, Session: mode}
	if kind == "slow" {
		cfg.Timeout = 2 * time.Second // shorter than the lab's delay
	}
	c, err := New(cfg, "Lab-Passw0rd!", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	_, err = c.Collect(context.Background(), inventory.Host{Name: "dc02.lab.example"}, inventory.CollectRequest{MaxEvents: 100})
	if want == nil && mode != SessionPerPoll {
		// A kept shell is deleted only at recycling and Close: the
		// poll works, Close names the host whose shell it could not delete.
		if err != nil {
			t.Errorf("fault %s: poll: %v", kind, err)
		}
		if cerr := c.Close(); cerr == nil || !strings.Contains(cerr.Error(), "delete shell") || !strings.Contains(cerr.Error(), "dc02.lab.example") {
			t.Errorf("fault %s: Close: %v, want a delete shell error naming the host", kind, cerr)
		}
	} else if want == nil {
		if err == nil || !strings.Contains(err.Error(), "delete shell") {
			t.Errorf("fault %s: got %v, want a delete shell error", kind, err)
		}
	} else if !errors.Is(err, want) {
		t.Errorf("fault %s: got %v, want %v", kind, err, want)
	}
	if d := time.Since(start); d > cfg.Timeout+deleteTimeout {
		t.Errorf("fault %s took %s", kind, d)
	}
	if want == nil && mode != SessionPerPoll {
		return // closed above
	}
	if _, err := c.Collect(context.Background(), inventory.Host{Name: "dc03.lab.example"}, inventory.CollectRequest{MaxEvents: 100}); err != nil {
		t.Errorf("healthy host next to the faulty one: %v", err)
	}
	if err := bad.SetFault(""); err != nil {
		t.Fatal(err)
	}
	// The fault is over: the next poll of the host works again.
	if _, err := c.Collect(context.Background(), inventory.Host{Name: "dc02.lab.example"}, inventory.CollectRequest{MaxEvents: 100}); err != nil {
		t.Errorf("fault %s cleared: the next poll failed: %v", kind, err)
	}
}

// TestNTLMConnectionReuse: polls reuse the authenticated keep-alive
// connection instead of an NTLM handshake per SOAP message.
func TestNTLMConnectionReuse(t *testing.T) {
	for _, mode := range sessionModes {
		for _, scheme := range []string{"https", "http"} {
			t.Run(mode+"/"+scheme, func(t *testing.T) { ntlmConnectionReuse(t, mode, scheme) })
		}
	}
}

func ntlmConnectionReuse(t *testing.T, mode, scheme string) {
	dc := winhost.New("dc01.lab.example", winhost.Options{Role: winhost.RoleDC, Small: true})
	var mu sync.Mutex
	handshakes := 0
	addr, ca := labServerWith(t, scheme == "https", func(o *wsauth.Options, _ *tls.Config) {
		o.OnAttempt = func(a wsauth.Attempt) {
			mu.Lock()
			defer mu.Unlock()
			if a.OK {
				handshakes++
			}
		}
	}, dc)
	cfg := config.WinRM{Scheme: scheme, Auth: "ntlm", Username: `LAB\svcwatch`, CAFile: ca, TLSServerName: "example.com", ConnectTo: addr, Timeout: 10 * time.Second, Session: mode}
	c, err := New(cfg, "Lab-Passw0rd!", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := 0; i < 3; i++ {
		if _, err := c.Collect(context.Background(), inventory.Host{Name: "dc01.lab.example"}, inventory.CollectRequest{MaxEvents: 10}); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	// 3 polls are at least 12 SOAP messages.
	if handshakes != 1 {
		t.Errorf("%d NTLM handshakes for 3 polls, want 1", handshakes)
	}
}

// TestCollectConcurrentHosts polls several lab hosts at once through one
// Collector, as the poller's workers do.
func TestCollectConcurrentHosts(t *testing.T) {
	var hosts []*winhost.Host
	for _, n := range []string{"dc01", "dc02", "dc03", "srv01", "srv02"} {
		hosts = append(hosts, winhost.New(n+".lab.example", winhost.Options{Small: true}))
	}
	for _, mode := range sessionModes {
		for _, scheme := range []string{"https", "http"} {
			t.Run(mode+"/"+scheme, func(t *testing.T) { collectConcurrentHosts(t, mode, scheme, hosts) })
		}
	}
}

func collectConcurrentHosts(t *testing.T, mode, scheme string, hosts []*winhost.Host) {
	addr, ca := labServer(t, scheme == "https", hosts...)
	cfg := config.WinRM{Scheme: scheme, Auth: "ntlm", Username: `LAB\svcwatch`, CAFile: ca, TLSServerName: "example.com", ConnectTo: addr, Timeout: 20 * time.Second, Session: mode}
	c, err := New(cfg, "Lab-Passw0rd!", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 2*len(hosts))
	for round := 0; round < 2; round++ {
		for _, h := range hosts {
			wg.Add(1)
			go func(name string) {
				defer wg.Done()
				obs, err := c.Collect(context.Background(), inventory.Host{Name: name}, inventory.CollectRequest{MaxEvents: 50})
				if err == nil && obs.Host != name {
					err = errors.New("observation for " + obs.Host + ", asked " + name)
				}
				errs <- err
			}(h.Name())
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}
