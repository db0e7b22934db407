// Package wsman is a WS-Management server for the svcwatch lab: it speaks
// the WinRS shell protocol (Create, Command, Receive, Send, Signal, Delete)
// the way Windows' WinRM service does, down to the namespaces, element names
// and fault codes of real captures (shared/wire/wsman), and runs the
// commands on simulated hosts (package winhost) chosen by the HTTP Host
// header.
package wsman

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf16"

	"github.com/svcwatch/svcwatch/internal/lab/winhost"
)

// Resolver finds the simulated host for a host name (lower case, no port).
type Resolver interface {
	Lookup(name string) (*winhost.Host, bool)
}

// ResolverFunc adapts a function to Resolver.
type ResolverFunc func(name string) (*winhost.Host, bool)

// Lookup calls f.
func (f ResolverFunc) Lookup(name string) (*winhost.Host, bool) { return f(name) }

// Defaults, as a stock Windows Server configures WinRM.
const (
	DefaultMaxEnvelopeSize   = 500 * 1024    // MaxEnvelopeSizekb 500: larger requests get HTTP 413
	DefaultMaxShellsPerUser  = 30            // MaxShellsPerUser
	DefaultIdleTimeout       = 2 * time.Hour // IdleTimeout PT7200S
	DefaultMaxOperations     = 1500          // MaxConcurrentOperationsPerUser: a shell's commands count until it is deleted
	DefaultOperationTimeout  = 60 * time.Second
	clientEnvelopeSize       = 153600 // a client that sends no MaxEnvelopeSize
	minClientEnvelopeSize    = 8192
	envelopeOverhead         = 2048 // room for the Receive envelope around the streams
	defaultLinger            = 25 * time.Millisecond
	defaultOutputBufferLimit = 1 << 20
)

// Option configures a Server.
type Option func(*Server)

// WithLatency delays every request, like a busy DC (the benchmark uses 5 ms).
func WithLatency(d time.Duration) Option { return func(s *Server) { s.latency = d } }

// WithMaxEnvelopeSize sets the largest request accepted (bytes).
func WithMaxEnvelopeSize(n int) Option { return func(s *Server) { s.maxEnvelope = n } }

// WithMaxShellsPerUser sets the per-user, per-host shell quota.
func WithMaxShellsPerUser(n int) Option { return func(s *Server) { s.maxShells = n } }

// WithMaxOperations sets how many commands one shell may run before Windows
// answers the 2150859174 quota fault (a client that keeps one shell across
// polls must recycle it before this).
func WithMaxOperations(n int) Option { return func(s *Server) { s.maxOps = n } }

// WithIdleTimeout sets how long an unused shell lives before Windows reclaims it.
func WithIdleTimeout(d time.Duration) Option { return func(s *Server) { s.idleTimeout = d } }

// WithUser sets how the authenticated user is found (default: the Basic
// auth user name, else "anonymous"). The lab passes wsauth.User.
func WithUser(f func(*http.Request) string) Option { return func(s *Server) { s.user = f } }

// WithLinger sets how long Receive waits for more output once some is buffered.
func WithLinger(d time.Duration) Option { return func(s *Server) { s.linger = d } }

// Stats counts one host's traffic.
type Stats struct {
	Requests      int64 // WS-Management requests handled
	Faults        int64 // of which answered with a SOAP fault
	SOAPIn        int64 // request envelope bytes (plaintext)
	SOAPOut       int64 // response envelope bytes (plaintext)
	WireIn        int64 // bytes received, headers included, as counted by Front (sealed when NTLM seals)
	WireOut       int64 // bytes sent, headers included, as counted by Front
	HTTPRequests  int64 // HTTP requests seen by Front (auth handshakes included)
	ShellsCreated int64
	Commands      int64
}

// Server is the WS-Management endpoint. Create it with NewServer.
type Server struct {
	hosts       Resolver
	latency     time.Duration
	maxEnvelope int
	maxShells   int
	maxOps      int
	idleTimeout time.Duration
	linger      time.Duration
	user        func(*http.Request) string

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	closed bool
	shells map[string]*shell
	stats  map[string]*Stats
}

// NewServer returns a WS-Management handler for the hosts Resolver knows.
func NewServer(hosts Resolver, opts ...Option) *Server {
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		hosts: hosts, maxEnvelope: DefaultMaxEnvelopeSize, maxShells: DefaultMaxShellsPerUser, maxOps: DefaultMaxOperations,
		idleTimeout: DefaultIdleTimeout, linger: defaultLinger, user: basicUser,
		ctx: ctx, cancel: cancel, shells: map[string]*shell{}, stats: map[string]*Stats{},
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

func basicUser(r *http.Request) string {
	if u, _, ok := r.BasicAuth(); ok && u != "" {
		return u
	}
	return "anonymous"
}

// Close terminates every running command and waits for them; Receives
// waiting on them answer at once. Later Commands are refused.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
}

// Stats returns a copy of one host's counters.
func (s *Server) Stats(host string) Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.stats[strings.ToLower(host)]; st != nil {
		return *st
	}
	return Stats{}
}

// AllStats returns every host's counters.
func (s *Server) AllStats() map[string]Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]Stats, len(s.stats))
	for h, st := range s.stats {
		out[h] = *st
	}
	return out
}

// ResetStats zeroes every counter.
func (s *Server) ResetStats() {
	s.mu.Lock()
	s.stats = map[string]*Stats{}
	s.mu.Unlock()
}

// OpenShells is the number of shells open on a host.
func (s *Server) OpenShells(host string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, sh := range s.shells {
		if sh.host == strings.ToLower(host) {
			n++
		}
	}
	return n
}

func (s *Server) count(host string, f func(*Stats)) {
	s.mu.Lock()
	st := s.stats[host]
	if st == nil {
		st = &Stats{}
		s.stats[host] = st
	}
	f(st)
	s.mu.Unlock()
}

// HostName is the routing key of a request: its Host header without the
// port, lower case, without a trailing dot.
func HostName(r *http.Request) string {
	h := r.Host
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	return strings.TrimSuffix(strings.ToLower(strings.Trim(h, "[]")), ".")
}

// Front guards the HTTP edge in front of authentication: unknown hosts get
// HTTP.sys' 400, hosts that are down get their connection reset, hosts with
// the logon-failure fault answer 401, and the bytes on the wire are counted
// per host. Use it as Front(auth.Wrap(server)).
func (s *Server) Front(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, h, ok := s.reachable(w, r)
		if !ok {
			return
		}
		if h.Fault() == winhost.FaultLogonFailure {
			// What Windows answers to bad credentials: 401, no body, the schemes again.
			io.Copy(io.Discard, io.LimitReader(r.Body, int64(s.maxEnvelope)))
			w.Header().Add("WWW-Authenticate", "Negotiate")
			w.Header().Add("WWW-Authenticate", `Basic realm="WSMAN"`)
			w.Header().Set("Server", "Microsoft-HTTPAPI/2.0")
			w.Header().Set("Content-Length", "0")
			w.WriteHeader(http.StatusUnauthorized)
			s.count(name, func(st *Stats) { st.HTTPRequests++ })
			return
		}
		in := &countingBody{ReadCloser: r.Body}
		r.Body = in
		cw := &countingWriter{ResponseWriter: w}
		next.ServeHTTP(cw, r)
		reqHeader := int64(len(r.Method) + len(r.URL.RequestURI()) + 12)
		for k, vs := range r.Header {
			for _, v := range vs {
				reqHeader += int64(len(k) + len(v) + 4)
			}
		}
		respHeader := int64(17)
		for k, vs := range w.Header() {
			for _, v := range vs {
				respHeader += int64(len(k) + len(v) + 4)
			}
		}
		s.count(name, func(st *Stats) {
			st.HTTPRequests++
			st.WireIn += reqHeader + in.n
			st.WireOut += respHeader + cw.n
		})
	})
}

type countingBody struct {
	io.ReadCloser
	n int64
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n += int64(n)
	return n, err
}

type countingWriter struct {
	http.ResponseWriter
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.ResponseWriter.Write(p)
	c.n += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the real writer (hijacking).
func (c *countingWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// reachable finds the host a request is for. When there is none it answers
// HTTP.sys' 400, when the host is down it resets the connection; either way
// ok is false and the request is done.
func (s *Server) reachable(w http.ResponseWriter, r *http.Request) (name string, h *winhost.Host, ok bool) {
	name = HostName(r)
	h, ok = s.hosts.Lookup(name)
	if !ok {
		writeInvalidHostname(w)
		return name, nil, false
	}
	if h.Down() {
		ResetConnection(w)
		return name, nil, false
	}
	return name, h, true
}

func writeInvalidHostname(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/html; charset=us-ascii")
	w.Header().Set("Server", "Microsoft-HTTPAPI/2.0")
	w.WriteHeader(http.StatusBadRequest)
	io.WriteString(w, invalidHostnameBody)
}

// ResetConnection drops the client's TCP connection with a reset, as a host
// that went away would.
func ResetConnection(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler) // HTTP/2 or a wrapper that cannot hijack: abort the stream
	}
	raw := conn
	if tc, ok := conn.(*tls.Conn); ok {
		raw = tc.NetConn()
	}
	if tcp, ok := raw.(*net.TCPConn); ok {
		tcp.SetLinger(0)
	}
	conn.Close()
}

// ServeHTTP handles one WS-Management request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name, h, ok := s.reachable(w, r)
	if !ok {
		return
	}
	if r.URL.Path != "/wsman" {
		w.Header().Set("Server", "Microsoft-HTTPAPI/2.0")
		http.Error(w, "Not Found", http.StatusNotFound)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	if s.latency > 0 {
		t := time.NewTimer(s.latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, int64(s.maxEnvelope)+1))
	if err != nil {
		return // the client went away
	}
	if len(body) > s.maxEnvelope {
		w.Header().Set("Server", "Microsoft-HTTPAPI/2.0")
		w.WriteHeader(http.StatusRequestEntityTooLarge)
		s.count(name, func(st *Stats) { st.Requests++; st.SOAPIn += int64(len(body)) })
		return
	}
	resp, status, reset := s.handle(r, h, name, body)
	if reset {
		ResetConnection(w)
		return
	}
	w.Header().Set("Content-Type", "application/soap+xml;charset=UTF-8")
	w.Header().Set("Server", "Microsoft-HTTPAPI/2.0")
	w.Header().Set("Content-Length", strconv.Itoa(len(resp)))
	w.WriteHeader(status)
	w.Write(resp)
	s.count(name, func(st *Stats) {
		st.Requests++
		st.SOAPIn += int64(len(body))
		st.SOAPOut += int64(len(resp))
		if status != http.StatusOK {
			st.Faults++
		}
	})
}

// handle dispatches on the action. reset asks the caller to drop the connection.
func (s *Server) handle(r *http.Request, h *winhost.Host, name string, body []byte) (resp []byte, status int, reset bool) {
	var req request
	fail := func(f Fault) ([]byte, int, bool) {
		return f.render(req.Header.MessageID, h.Name()), f.status(), false
	}
	if err := xml.Unmarshal(body, &req); err != nil || req.Header.Action == "" {
		return fail(faultSchema)
	}
	timeout := DefaultOperationTimeout
	if v := req.Header.OperationTimeout; v != "" {
		d, ok := parseDuration(v)
		if !ok || d <= 0 {
			return fail(faultInvalidTimeout(v))
		}
		timeout = d
	}
	envelope := clientEnvelopeSize
	if v := strings.TrimSpace(req.Header.MaxEnvelopeSize); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < minClientEnvelopeSize {
			return fail(faultSchema)
		}
		envelope = n
	}
	if req.Header.Action != ActionCreate && req.Header.ResourceURI != uriCmdShell {
		return fail(faultActionNotSupported)
	}
	user := s.user(r)
	if req.Header.Action != ActionCreate && req.Header.Action != ActionDelete && h.Fault() == winhost.FaultAccessDenied {
		// WinRM authorizes every request, not only Create: a kept shell
		// stops answering once the account loses its rights.
		return fail(faultAccessDenied)
	}

	switch req.Header.Action {
	case ActionCreate:
		if req.Header.ResourceURI != uriCmdShell || req.Body.Shell == nil {
			return fail(faultActionNotSupported)
		}
		switch h.Fault() {
		case winhost.FaultAccessDenied:
			return fail(faultAccessDenied)
		case winhost.FaultQuota:
			return fail(quotaFault(s.maxShells))
		}
		id, f := s.createShell(name, user)
		if f != nil {
			return fail(*f)
		}
		s.count(name, func(st *Stats) { st.ShellsCreated++ })
		addr := req.Header.To
		if addr == "" {
			addr = "http://" + r.Host + "/wsman"
		}
		clientIP, _, _ := net.SplitHostPort(r.RemoteAddr)
		return []byte(createResponse(req.Header.MessageID, addr, id, user, clientIP)), http.StatusOK, false

	case ActionCommand:
		sh := s.shell(req.selector("ShellId"), name)
		if sh == nil {
			return fail(faultUnknownShell)
		}
		if req.Body.CommandLine == nil {
			return fail(faultSchema)
		}
		line := req.commandLine()
		if len(utf16.Encode([]rune(line))) > maxCreateProcessCmdLine {
			return fail(faultTooLong)
		}
		id, status := s.startCommand(sh, h, line)
		switch status {
		case startClosed:
			return fail(faultShuttingDown)
		case startQuota:
			f := faultMaxOperations
			f.Reason, f.Message = fmt.Sprintf(f.Reason, s.maxOps), fmt.Sprintf(f.Message, s.maxOps)
			return fail(f)
		}
		s.count(name, func(st *Stats) { st.Commands++ })
		return []byte(commandResponse(req.Header.MessageID, id)), http.StatusOK, false

	case ActionReceive:
		sh := s.shell(req.selector("ShellId"), name)
		if sh == nil {
			return fail(faultUnknownShell)
		}
		if req.Body.Receive == nil {
			return fail(faultSchema)
		}
		c := s.command(sh, req.Body.Receive.DesiredStream.CommandID)
		if c == nil {
			return fail(faultUnknownCommand)
		}
		maxBytes := (envelope - envelopeOverhead) * 3 / 4
		chunk, ok := c.receive(r.Context(), timeout, s.linger, maxBytes)
		if !ok {
			return fail(faultTimedOut)
		}
		return receiveResponse(req.Header.MessageID, c.id, chunk), http.StatusOK, false

	case ActionSend:
		sh := s.shell(req.selector("ShellId"), name)
		if sh == nil {
			return fail(faultUnknownShell)
		}
		if req.Body.Send == nil || len(req.Body.Send.Streams) == 0 {
			return fail(faultUnknownCommand)
		}
		for _, st := range req.Body.Send.Streams {
			if s.command(sh, st.CommandID) == nil {
				return fail(faultUnknownCommand)
			}
			if st.Name != "" && st.Name != "stdin" {
				return fail(faultSchema)
			}
		}
		for _, st := range req.Body.Send.Streams {
			data, err := base64.StdEncoding.DecodeString(strings.TrimSpace(st.Data))
			if err != nil {
				return fail(faultSchema)
			}
			s.command(sh, st.CommandID).stdin.write(data, st.End == "true" || st.End == "1")
		}
		return []byte(sendResponse(req.Header.MessageID)), http.StatusOK, false

	case ActionSignal:
		sh := s.shell(req.selector("ShellId"), name)
		if sh == nil {
			return fail(faultUnknownShell)
		}
		if req.Body.Signal == nil {
			return fail(faultSchema)
		}
		if !s.signal(sh, req.Body.Signal.CommandID, strings.TrimSpace(req.Body.Signal.Code)) {
			return fail(faultUnknownCommand)
		}
		return []byte(signalResponse(req.Header.MessageID)), http.StatusOK, false

	case ActionDelete:
		if h.Fault() == winhost.FaultShellLeak {
			return nil, 0, true // the shell stays open until its idle timeout
		}
		if !s.deleteShell(req.selector("ShellId"), name) {
			return fail(faultUnknownShell)
		}
		return []byte(deleteResponse(req.Header.MessageID)), http.StatusOK, false
	}
	return fail(faultActionNotSupported)
}

func quotaFault(max int) Fault {
	f := faultQuota
	f.Message = fmt.Sprintf(f.Message, max)
	return f
}

// createShell opens a shell for user on host, or returns the quota fault.
func (s *Server) createShell(host, user string) (string, *Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	open := 0
	for id, sh := range s.shells {
		if now.Sub(sh.lastUsed) > s.idleTimeout && !sh.busy() {
			delete(s.shells, id) // reclaimed by the idle timeout
			continue
		}
		if sh.host == host && strings.EqualFold(sh.owner, user) {
			open++
		}
	}
	if open >= s.maxShells {
		f := quotaFault(s.maxShells)
		return "", &f
	}
	id := newID()
	s.shells[id] = &shell{id: id, host: host, owner: user, lastUsed: now, commands: map[string]*command{}}
	return id, nil
}

// busy reports whether a command still runs in the shell (caller holds s.mu).
func (sh *shell) busy() bool {
	for _, c := range sh.commands {
		c.mu.Lock()
		done := c.done
		c.mu.Unlock()
		if !done {
			return true
		}
	}
	return false
}

func (s *Server) shell(id, host string) *shell {
	s.mu.Lock()
	defer s.mu.Unlock()
	sh := s.shells[strings.ToUpper(id)]
	if sh == nil || sh.host != host {
		return nil
	}
	sh.lastUsed = time.Now()
	return sh
}

func (s *Server) command(sh *shell, id string) *command {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := sh.commands[strings.ToUpper(strings.TrimSpace(id))]
	if c == nil {
		return nil
	}
	c.mu.Lock()
	delivered := c.delivered
	c.mu.Unlock()
	if delivered {
		return nil // finished and fully received: Windows has forgotten it
	}
	return c
}

type startStatus int

const (
	startOK startStatus = iota
	startClosed
	startQuota
)

func (s *Server) startCommand(sh *shell, h *winhost.Host, line string) (string, startStatus) {
	ctx, cancel := context.WithCancel(s.ctx)
	c := newCommand(newID(), cancel, defaultOutputBufferLimit)
	s.mu.Lock()
	if s.closed || len(sh.commands) >= s.maxOps {
		s.mu.Unlock()
		cancel()
		if s.closed {
			return "", startClosed
		}
		return "", startQuota
	}
	sh.commands[c.id] = c
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		defer cancel()
		defer c.stdin.close()
		exit, err := h.ExecInput(ctx, line, stdinReader{in: c.stdin, ctx: ctx}, streamWriter{c: c, ctx: ctx}, streamWriter{c: c, stderr: true, ctx: ctx})
		if err != nil && ctx.Err() != nil {
			exit = exitTerminated
		}
		c.finish(exit)
	}()
	return c.id, startOK
}

// signal terminates (or ctrl_c's) a command; Windows accepts a signal for a
// command that already finished.
func (s *Server) signal(sh *shell, id, code string) bool {
	s.mu.Lock()
	c := sh.commands[strings.ToUpper(strings.TrimSpace(id))]
	s.mu.Unlock()
	if c == nil {
		return false
	}
	if code == signalTerm || code == signalCtrlC {
		c.cancel()
	}
	return true
}

func (s *Server) deleteShell(id, host string) bool {
	s.mu.Lock()
	sh := s.shells[strings.ToUpper(id)]
	if sh == nil || sh.host != host {
		s.mu.Unlock()
		return false
	}
	delete(s.shells, sh.id)
	s.mu.Unlock()
	for _, c := range sh.commands {
		c.cancel()
	}
	return true
}
