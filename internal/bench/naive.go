package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	mz "github.com/masterzen/winrm"
)

// The two scripts a straightforward poller runs on every host, every time:
// the System-log service events, then the whole service and driver list.
const (
	naiveEventsScript = `Get-WinEvent -FilterHashtable @{LogName='System'; Id=7045,104,7040} -ErrorAction SilentlyContinue | ` +
		`Select-Object Id,RecordId,ProviderName,LogName,MachineName,TimeCreated,UserId,@{n='Properties';e={$_.Properties.Value}} | ConvertTo-Json -Depth 3`
	naiveServicesScript = `@(Get-CimInstance Win32_Service) + @(Get-CimInstance Win32_SystemDriver) | ` +
		`Select-Object Name,DisplayName,PathName,ServiceType,StartMode,StartName,State | ConvertTo-Json`
	naiveMaxOutput = 32 << 20
)

// naive is what most scripts do with masterzen/winrm: a fresh client per
// host and poll (new TCP, TLS and NTLM each time), RunPSWithContext for the
// events and again for the services, the full lists every time, a diff in
// memory and a webhook post per new service.
type naive struct {
	info   LabInfo
	ca     []byte
	hc     *http.Client
	mu     sync.Mutex
	state  map[string]*naiveState
	closed bool
}

type naiveState struct {
	maxRecord uint64
	services  map[string]bool
}

type naiveEvent struct {
	ID         int      `json:"Id"`
	RecordID   uint64   `json:"RecordId"`
	Properties []string `json:"Properties"`
}

type naiveService struct {
	Name     string `json:"Name"`
	PathName string `json:"PathName"`
}

func newNaive(info LabInfo) *naive {
	return &naive{info: info, ca: []byte(info.CAPEM), hc: &http.Client{Timeout: 15 * time.Second}, state: map[string]*naiveState{}}
}

// connTracker dials the lab and closes every connection when the poll is
// over, as a script that exits would: masterzen's client has no Close.
type connTracker struct {
	addr  string
	mu    sync.Mutex
	conns []net.Conn
}

func (t *connTracker) dial(network, _ string) (net.Conn, error) {
	c, err := net.DialTimeout(network, t.addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	t.conns = append(t.conns, c)
	t.mu.Unlock()
	return c, nil
}

func (t *connTracker) closeAll() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, c := range t.conns {
		c.Close()
	}
	t.conns = nil
}

func (n *naive) poll(ctx context.Context, host string) error {
	ctx, cancel := context.WithTimeout(ctx, pollTimeout)
	defer cancel()
	tr := &connTracker{addr: n.info.Addr}
	defer tr.closeAll()
	params := mz.NewParameters("PT60S", "en-US", 153600)
	params.Dial = tr.dial
	params.TransportDecorator = func() mz.Transporter { return mz.NewClientNTLMWithDial(tr.dial) }
	ep := &mz.Endpoint{Host: host, Port: 5986, HTTPS: true, CACert: n.ca, Timeout: pollTimeout}
	client, err := mz.NewClientWithParameters(ep, n.info.User, n.info.Password, params)
	if err != nil {
		return fmt.Errorf("%s: client: %w", host, err)
	}
	evOut, evErr, code, err := client.RunPSWithContext(ctx, naiveEventsScript)
	if err != nil || code != 0 {
		return fmt.Errorf("%s: events: exit %d: %v %s", host, code, err, truncate(evErr, 200))
	}
	svOut, svErr, code, err := client.RunPSWithContext(ctx, naiveServicesScript)
	if err != nil || code != 0 {
		return fmt.Errorf("%s: services: exit %d: %v %s", host, code, err, truncate(svErr, 200))
	}
	if len(evOut)+len(svOut) > naiveMaxOutput {
		return fmt.Errorf("%s: answers larger than %d bytes", host, naiveMaxOutput)
	}
	var events []naiveEvent
	if err := unmarshalList(evOut, &events); err != nil {
		return fmt.Errorf("%s: events: %w", host, err)
	}
	var services []naiveService
	if err := unmarshalList(svOut, &services); err != nil {
		return fmt.Errorf("%s: services: %w", host, err)
	}
	return n.diff(ctx, host, events, services)
}

// unmarshalList accepts what ConvertTo-Json prints: an array, a single
// object (one item), or nothing (no items).
func unmarshalList[T any](out string, v *[]T) error {
	out = strings.TrimSpace(out)
	if out == "" {
		return nil
	}
	if strings.HasPrefix(out, "{") {
		var one T
		if err := json.Unmarshal([]byte(out), &one); err != nil {
			return err
		}
		*v = []T{one}
		return nil
	}
	return json.Unmarshal([]byte(out), v)
}

func (n *naive) diff(ctx context.Context, host string, events []naiveEvent, services []naiveService) error {
	n.mu.Lock()
	prev := n.state[host]
	next := &naiveState{services: make(map[string]bool, len(services))}
	for _, s := range services {
		next.services[strings.ToLower(s.Name)] = true
	}
	var news []string
	for _, e := range events {
		next.maxRecord = max(next.maxRecord, e.RecordID)
		if prev != nil && e.ID == 7045 && e.RecordID > prev.maxRecord && len(e.Properties) > 1 {
			news = append(news, fmt.Sprintf("7045: service %q installed, image %q", e.Properties[0], e.Properties[1]))
		}
	}
	if prev != nil {
		for _, s := range services {
			if !prev.services[strings.ToLower(s.Name)] {
				news = append(news, fmt.Sprintf("new service %q, image %q", s.Name, s.PathName))
			}
		}
	}
	n.state[host] = next
	n.mu.Unlock()
	if len(news) == 0 {
		return nil
	}
	sort.Strings(news)
	body, _ := json.Marshal(map[string]string{"text": "svcwatch-naive: " + host + ": " + strings.Join(news, "; ")})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.info.Webhook, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := n.hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s: webhook: %w", host, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: webhook: HTTP %d", host, resp.StatusCode)
	}
	return nil
}

func (n *naive) start(context.Context) {}
func (n *naive) stop(context.Context)  {}
func (n *naive) close() error          { return nil }
