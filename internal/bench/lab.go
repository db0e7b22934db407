package bench

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/svcwatch/svcwatch/internal/lab/slacksink"
	"github.com/svcwatch/svcwatch/internal/lab/winhost"
	"github.com/svcwatch/svcwatch/internal/lab/wsauth"
	"github.com/svcwatch/svcwatch/internal/lab/wsman"
)

// Lab defaults.
const (
	// Domain is the DNS suffix of the simulated hosts (h00001.bench.lab, ...).
	Domain = "bench.lab"
	// LabUser is the account the pollers authenticate as.
	LabUser = `BENCH\svc-poll`
	// MaxHosts bounds --hosts (file descriptors: one connection per host on each side).
	MaxHosts = 20000
	// authShardSize is how many hosts share one wsauth.Auth: wsauth keeps at
	// most 4096 connection contexts and evicts beyond that, which would force
	// a new NTLM handshake on every poll of a large keep-alive fleet.
	authShardSize = 2000
)

// LabOptions configure the simulated fleet.
type LabOptions struct {
	Hosts   int
	Latency time.Duration // per WS-Management request, server side
}

// LabInfo is what a poller needs to reach a running lab. The lab prints it
// as one JSON line when it serves from a child process.
type LabInfo struct {
	Addr         string `json:"addr"`    // TLS listener, host:port
	Control      string `json:"control"` // control API base URL
	CAPEM        string `json:"ca_pem"`
	User         string `json:"user"`
	Password     string `json:"password"` // a throw-away lab credential
	SlackAPI     string `json:"slack_api"`
	SlackToken   string `json:"slack_token"`
	SlackChannel string `json:"slack_channel"`
	Webhook      string `json:"webhook"`
	Hosts        int    `json:"hosts"`
	Transport    string `json:"transport"` // what the listener speaks, for the report
	PID          int    `json:"pid"`
}

// HostName is the DNS name of simulated host i (0-based).
func HostName(i int) string { return fmt.Sprintf("h%05d.%s", i+1, Domain) }

// HostCounters are one host's server-side traffic counters.
type HostCounters struct {
	HTTPRequests int64 `json:"http"`     // HTTP requests, authentication legs included
	SOAP         int64 `json:"soap"`     // WS-Management requests handled
	RawIn        int64 `json:"raw_in"`   // TCP payload bytes client→server (TLS records and handshakes included)
	RawOut       int64 `json:"raw_out"`  // TCP payload bytes server→client
	HTTPIn       int64 `json:"http_in"`  // HTTP bytes (headers approximated, bodies exact) client→server
	HTTPOut      int64 `json:"http_out"` // HTTP bytes server→client
	Conns        int64 `json:"conns"`    // TCP connections accepted
}

// SinkMessage is a message the Slack sink accepted, reduced to what the
// benchmark matches on.
type SinkMessage struct {
	Seq      int    `json:"seq"`
	Via      string `json:"via"`
	Received int64  `json:"received"` // unix nanoseconds
	Text     string `json:"text"`
}

// Lab is a running simulated fleet: WS-Management over TLS with NTLM, a
// Slack sink, and a control API for the benchmark driver.
type Lab struct {
	info  LabInfo
	hosts map[string]*winhost.Host
	ws    *wsman.Server
	raw   *rawRegistry
	sink  *slacksink.Sink
	srv   *http.Server
	ctl   *http.Server
	lns   []net.Listener
	done  sync.WaitGroup
}

// StartLab runs a lab in this process on 127.0.0.1.
func StartLab(opts LabOptions) (*Lab, error) {
	if opts.Hosts < 1 || opts.Hosts > MaxHosts {
		return nil, fmt.Errorf("bench: --hosts %d: want 1..%d", opts.Hosts, MaxHosts)
	}
	if opts.Latency < 0 || opts.Latency > 10*time.Second {
		return nil, fmt.Errorf("bench: --latency %s: want 0..10s", opts.Latency)
	}
	certPEM, cert, err := selfSigned()
	if err != nil {
		return nil, err
	}
	pw := make([]byte, 12)
	if _, err := rand.Read(pw); err != nil {
		return nil, fmt.Errorf("bench: random lab password: %w", err)
	}
	password := "Bench-" + hex.EncodeToString(pw) + "!"

	l := &Lab{hosts: make(map[string]*winhost.Host, opts.Hosts), raw: newRawRegistry()}
	for i := range opts.Hosts {
		role := winhost.RoleMember
		if i%100 == 0 {
			role = winhost.RoleDC
		}
		name := HostName(i)
		l.hosts[name] = winhost.New(name, winhost.Options{Role: role, Domain: "BENCH"})
	}
	l.ws = wsman.NewServer(wsman.ResolverFunc(func(name string) (*winhost.Host, bool) {
		h, ok := l.hosts[name]
		return h, ok
	}), wsman.WithLatency(opts.Latency), wsman.WithUser(func(r *http.Request) string { return wsauth.User(r.Context()) }))

	nShards := opts.Hosts/authShardSize + 1
	shards := make([]*wsauth.Auth, nShards)
	inner := make([]http.Handler, nShards)
	for i := range shards {
		shards[i] = wsauth.New(wsauth.Options{
			Users:  map[string]string{LabUser: password},
			Domain: "BENCH", DNSDomain: Domain, ServerName: "BENCHDC",
		})
		inner[i] = shards[i].Wrap(l.ws)
	}
	route := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f := fnv.New32a()
		io.WriteString(f, wsman.HostName(r))
		inner[int(f.Sum32()%uint32(nShards))].ServeHTTP(w, r)
	})
	front := l.ws.Front(route)
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if cc, ok := r.Context().Value(connKey{}).(*countConn); ok {
			cc.setHost(wsman.HostName(r))
		}
		front.ServeHTTP(w, r)
	})

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("bench: listen on loopback: %w", err)
	}
	l.lns = append(l.lns, ln)
	l.srv = &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute, // HTTP.sys's default idle connection timeout
		// NTLM authenticates a connection; HTTP/2 would multiplex it.
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
		ConnState: func(c net.Conn, s http.ConnState) {
			for _, a := range shards {
				a.ConnState(c, s)
			}
		},
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if tc, ok := c.(*tls.Conn); ok {
				if cc, ok := tc.NetConn().(*countConn); ok {
					return context.WithValue(ctx, connKey{}, cc)
				}
			}
			return ctx
		},
	}
	tlsLn := tls.NewListener(&countListener{Listener: ln, reg: l.raw}, &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"http/1.1"},
	})

	sink, err := slacksink.Start()
	if err != nil {
		l.closeListeners()
		return nil, err
	}
	l.sink = sink

	cln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		l.closeListeners()
		sink.Close()
		return nil, fmt.Errorf("bench: listen on loopback: %w", err)
	}
	l.lns = append(l.lns, cln)
	l.ctl = &http.Server{Handler: l.controlHandler(), ReadHeaderTimeout: 10 * time.Second}

	l.info = LabInfo{
		Addr:         ln.Addr().String(),
		Control:      "http://" + cln.Addr().String(),
		CAPEM:        string(certPEM),
		User:         LabUser,
		Password:     password,
		SlackAPI:     sink.URL(),
		SlackToken:   sink.Token(),
		SlackChannel: sink.Channel(),
		Webhook:      sink.WebhookURL(),
		Hosts:        opts.Hosts,
		Transport:    fmt.Sprintf("HTTPS (TLS 1.2+, ECDSA P-256) + NTLMv2 (wsauth), HTTP/1.1 keep-alive, %s server-side latency per WS-Management request", opts.Latency),
	}
	l.done.Add(2)
	go func() { defer l.done.Done(); _ = l.srv.Serve(tlsLn) }()
	go func() { defer l.done.Done(); _ = l.ctl.Serve(cln) }()
	return l, nil
}

// Info describes how to reach the lab.
func (l *Lab) Info() LabInfo { return l.info }

// Close stops every listener and command.
func (l *Lab) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = l.ctl.Shutdown(ctx)
	_ = l.srv.Shutdown(ctx)
	_ = l.srv.Close()
	l.ws.Close()
	l.sink.Close()
	l.done.Wait()
	return nil
}

func (l *Lab) closeListeners() {
	for _, ln := range l.lns {
		ln.Close()
	}
}

// Counters merges wsman's per-host HTTP counters with the raw TCP counters.
func (l *Lab) Counters() map[string]HostCounters {
	out := make(map[string]HostCounters, len(l.hosts))
	for name, st := range l.ws.AllStats() {
		c := out[name]
		c.HTTPRequests, c.SOAP, c.HTTPIn, c.HTTPOut = st.HTTPRequests, st.Requests, st.WireIn, st.WireOut
		out[name] = c
	}
	for name, r := range l.raw.snapshot() {
		c := out[name]
		c.RawIn, c.RawOut, c.Conns = r.in, r.out, r.conns
		out[name] = c
	}
	return out
}

// Apply runs a scenario on the named hosts and returns when each happened.
func (l *Lab) Apply(scenario string, names []string) (map[string]int64, error) {
	at := make(map[string]int64, len(names))
	for _, n := range names {
		h, ok := l.hosts[n]
		if !ok {
			return nil, fmt.Errorf("bench: no host %q in the lab", n)
		}
		if err := h.Apply(scenario); err != nil {
			return nil, err
		}
		at[n] = time.Now().UnixNano()
	}
	return at, nil
}

// Messages returns the sink's messages after seq.
func (l *Lab) Messages(after int) []SinkMessage {
	var out []SinkMessage
	for _, m := range l.sink.Messages() {
		if m.Seq <= after {
			continue
		}
		var b strings.Builder
		for _, t := range m.TextObjects() {
			b.WriteString(t.Text)
			b.WriteByte('\n')
		}
		out = append(out, SinkMessage{Seq: m.Seq, Via: m.Via, Received: m.Received.UnixNano(), Text: b.String()})
	}
	return out
}

// applyRequest is the body of POST /apply.
type applyRequest struct {
	Scenario string   `json:"scenario"`
	Hosts    []string `json:"hosts"`
}

func (l *Lab) controlHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /counters", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, l.Counters())
	})
	mux.HandleFunc("POST /apply", func(w http.ResponseWriter, r *http.Request) {
		var req applyRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		at, err := l.Apply(req.Scenario, req.Hosts)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		writeJSON(w, at)
	})
	mux.HandleFunc("GET /messages", func(w http.ResponseWriter, r *http.Request) {
		var after int
		fmt.Sscan(r.URL.Query().Get("after"), &after)
		writeJSON(w, l.Messages(after))
	})
	return mux
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// ServeLab runs a lab until ctx ends or stdin reaches EOF (the parent went
// away), after writing its LabInfo as one JSON line to out.
func ServeLab(ctx context.Context, opts LabOptions, stdin io.Reader, out io.Writer) error {
	l, err := StartLab(opts)
	if err != nil {
		return err
	}
	defer l.Close()
	info := l.info
	info.PID = os.Getpid()
	if err := json.NewEncoder(out).Encode(info); err != nil {
		return fmt.Errorf("bench: announce the lab: %w", err)
	}
	eof := make(chan struct{})
	if stdin != nil {
		go func() { _, _ = io.Copy(io.Discard, stdin); close(eof) }()
	}
	select {
	case <-ctx.Done():
	case <-eof:
	}
	return nil
}

// selfSigned makes a throw-away certificate for *.bench.lab.
func selfSigned() ([]byte, tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, tls.Certificate{}, fmt.Errorf("bench: key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "*." + Domain},
		DNSNames:              []string{"*." + Domain, Domain},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(7 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, tls.Certificate{}, fmt.Errorf("bench: certificate: %w", err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return certPEM, tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// ---- raw TCP byte counting, attributed to the host named by the first request ----

type connKey struct{}

type rawTotals struct{ in, out, conns int64 }

type rawRegistry struct {
	mu     sync.Mutex
	live   map[*countConn]struct{}
	closed map[string]rawTotals
}

func newRawRegistry() *rawRegistry {
	return &rawRegistry{live: map[*countConn]struct{}{}, closed: map[string]rawTotals{}}
}

func (r *rawRegistry) snapshot() map[string]rawTotals {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]rawTotals, len(r.closed)+len(r.live))
	for h, t := range r.closed {
		out[h] = t
	}
	for c := range r.live {
		h := c.hostName()
		t := out[h]
		t.in += c.in.Load()
		t.out += c.out.Load()
		t.conns++
		out[h] = t
	}
	return out
}

type countListener struct {
	net.Listener
	reg *rawRegistry
}

func (l *countListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	cc := &countConn{Conn: c, reg: l.reg}
	l.reg.mu.Lock()
	l.reg.live[cc] = struct{}{}
	l.reg.mu.Unlock()
	return cc, nil
}

type countConn struct {
	net.Conn
	reg     *rawRegistry
	in, out atomic.Int64
	host    atomic.Pointer[string]
	once    sync.Once
}

func (c *countConn) setHost(h string) {
	if c.host.Load() == nil {
		c.host.CompareAndSwap(nil, &h)
	}
}

func (c *countConn) hostName() string {
	if p := c.host.Load(); p != nil {
		return *p
	}
	return "?"
}

func (c *countConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.in.Add(int64(n))
	return n, err
}

func (c *countConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.out.Add(int64(n))
	return n, err
}

func (c *countConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.reg.mu.Lock()
		delete(c.reg.live, c)
		h := c.hostName()
		t := c.reg.closed[h]
		t.in += c.in.Load()
		t.out += c.out.Load()
		t.conns++
		c.reg.closed[h] = t
		c.reg.mu.Unlock()
	})
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}
