package winhost

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/svcwatch/svcwatch/internal/inventory"
)

// CollectRequest is the decoded collector preamble.
type CollectRequest struct {
	Watermark uint64 // $W
	Digest    string // $D: "0" or 64 lower-case hex
	MaxEvents int    // $N: 1..10000
	Lookback  int64  // $B: seconds, 0..31536000
}

// Preamble renders r as the one-line collector preamble (no newline), the
// exact form the collector's Go side must produce.
func (r CollectRequest) Preamble() string {
	return fmt.Sprintf("$W=%d;$D='%s';$N=%d;$B=%d;", r.Watermark, r.Digest, r.MaxEvents, r.Lookback)
}

// Limits from docs/internals.md.
const (
	MaxEvents   = 10000
	MaxLookback = 31536000
)

var preambleRE = regexp.MustCompile(`^\$W=(0|[1-9][0-9]{0,19});\$D='(0|[0-9a-f]{64})';\$N=([1-9][0-9]{0,4});\$B=(0|[1-9][0-9]{0,7});$`)

// parseCollectorScript checks the preamble and the body's first line. It
// accepts only what the protocol allows: anything else would be a request
// that interpolated something it should not.
func parseCollectorScript(script string) (CollectRequest, error) {
	pre, body, ok := strings.Cut(script, "\n")
	if !ok {
		return CollectRequest{}, fmt.Errorf("svcwatch collector: the request has no body after the preamble")
	}
	pre = strings.TrimSuffix(pre, "\r")
	m := preambleRE.FindStringSubmatch(pre)
	if m == nil {
		return CollectRequest{}, fmt.Errorf("At line:1 char:1\r\n+ %s\r\nUnexpected token in the svcwatch collector preamble; want $W=<uint64>;$D='<0|64 hex>';$N=<1..10000>;$B=<0..31536000>;", clip(pre, 80))
	}
	w, err := strconv.ParseUint(m[1], 10, 64)
	if err != nil {
		return CollectRequest{}, fmt.Errorf("svcwatch collector: $W=%s is out of range for UInt64", m[1])
	}
	n, _ := strconv.Atoi(m[3])
	b, _ := strconv.ParseInt(m[4], 10, 64)
	if n < 1 || n > MaxEvents {
		return CollectRequest{}, fmt.Errorf("svcwatch collector: $N=%d is outside 1..%d", n, MaxEvents)
	}
	if b > MaxLookback {
		return CollectRequest{}, fmt.Errorf("svcwatch collector: $B=%d is outside 0..%d", b, MaxLookback)
	}
	first, _, _ := strings.Cut(body, "\n")
	if strings.TrimSuffix(first, "\r") != CollectorMarker {
		return CollectRequest{}, fmt.Errorf("svcwatch collector: the body does not start with %q", CollectorMarker)
	}
	return CollectRequest{Watermark: w, Digest: m[2], MaxEvents: n, Lookback: b}, nil
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// The answer, field for field as docs/internals.md "Response" shows it.
type answerJSON struct {
	V        int            `json:"v"`
	Host     string         `json:"host"`
	Now      string         `json:"now"`
	Log      logJSON        `json:"log"`
	Events   []eventJSON    `json:"events"`
	More     bool           `json:"more"`
	Digest   string         `json:"digest"`
	Changed  bool           `json:"changed"`
	Services *[]serviceJSON `json:"services,omitempty"`
	Errors   []string       `json:"errors,omitempty"`
}

type logJSON struct {
	Oldest    uint64 `json:"oldest"`
	Newest    uint64 `json:"newest"`
	Records   uint64 `json:"records"`
	MaxBytes  int64  `json:"max_bytes"`
	Retention string `json:"retention"`
}

type eventJSON struct {
	ID   int      `json:"id"`
	Rec  uint64   `json:"rec"`
	Time string   `json:"time"`
	SID  string   `json:"sid"`
	Data []string `json:"data"`
}

type serviceJSON struct {
	Name    string `json:"name"`
	Display string `json:"display"`
	Path    string `json:"path"`
	DLL     string `json:"dll"`
	Start   int    `json:"start"`
	Delayed bool   `json:"delayed"`
	Account string `json:"account"`
	Type    uint32 `json:"type"`
	State   string `json:"state"`
}

const timeLayout = "2006-01-02T15:04:05.000Z"

func toServiceJSON(s inventory.Service) serviceJSON {
	return serviceJSON{
		Name: Sanitize(s.Name), Display: Sanitize(s.DisplayName), Path: Sanitize(s.ImagePath), DLL: Sanitize(s.ServiceDLL),
		Start: int(s.StartMode), Delayed: s.DelayedAuto, Account: Sanitize(s.Account), Type: s.Type, State: s.State,
	}
}

func toEventJSON(e inventory.Event) eventJSON {
	data := make([]string, len(e.Data))
	for i, d := range e.Data {
		data[i] = Sanitize(d)
	}
	return eventJSON{ID: e.ID, Rec: e.RecordID, Time: e.Time.UTC().Format(timeLayout), SID: e.SID, Data: data}
}

// Answer computes the collector's answer to req from the host's state, as
// the JSON document the PowerShell collector writes (without faults).
func (h *Host) Answer(req CollectRequest) []byte {
	a := h.answer(req)
	b, err := json.Marshal(a)
	if err != nil { // only strings and numbers: cannot fail
		panic(err)
	}
	return b
}

func (h *Host) answer(req CollectRequest) answerJSON {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.opts.Now().UTC()
	l := &h.log
	a := answerJSON{
		V: 1, Host: h.netbio, Now: now.Format(timeLayout),
		Log:    logJSON{Oldest: l.oldest, Newest: l.newest, Records: l.count(), MaxBytes: l.maxBytes, Retention: l.retention},
		Events: []eventJSON{},
	}
	after, bounded := req.Watermark, req.Watermark == 0
	if req.Watermark > l.newest { // cleared or reset under us: from the oldest record on
		after, bounded = 0, false
	}
	cutoff := now.Add(-time.Duration(req.Lookback) * time.Second)
	for _, e := range l.events {
		if e.RecordID <= after || (bounded && e.Time.Before(cutoff)) {
			continue
		}
		if len(a.Events) == req.MaxEvents {
			a.More = true
			break
		}
		a.Events = append(a.Events, toEventJSON(e))
	}
	a.Digest = h.digestLocked()
	if a.Digest != req.Digest {
		a.Changed = true
		list := make([]serviceJSON, len(h.services))
		for i, s := range h.services {
			list[i] = toServiceJSON(s)
		}
		a.Services = &list
	}
	return a
}

func (h *Host) digestLocked() string {
	if h.digest == "" {
		h.digest = Digest(h.services)
	}
	return h.digest
}

// garbageOutput is the garbage fault's stdout.
const garbageOutput = "Get-WinEvent : The RPC server is unavailable\r\n\x00\x13\xfe{<html><body>Service Unavailable</body></html>\r\n"

// collect answers a collector request, applying output faults.
func (h *Host) collect(ctx context.Context, req CollectRequest, fault string, stdout io.Writer) (int, error) {
	h.mu.Lock()
	h.collects++
	h.mu.Unlock()
	switch fault {
	case FaultGarbage:
		io.WriteString(stdout, garbageOutput)
		return 0, nil
	case FaultHuge:
		return h.writeHuge(ctx, stdout)
	}
	out := h.Answer(req)
	if fault == FaultTruncated {
		out = out[:len(out)/2]
	} else {
		out = append(out, '\r', '\n')
	}
	if _, err := stdout.Write(out); err != nil {
		return 1, err
	}
	return 0, nil
}

// writeHuge streams a well-formed answer larger than Options.HugeBytes whose
// services list repeats one entry, in chunks, never holding it all.
func (h *Host) writeHuge(ctx context.Context, w io.Writer) (int, error) {
	a := h.answer(CollectRequest{Watermark: ^uint64(0), Digest: "0", MaxEvents: 1})
	a.Services = nil
	a.Changed = true
	head, _ := json.Marshal(a)
	head = bytes.TrimSuffix(head, []byte("}"))
	entry, _ := json.Marshal(serviceJSON{Name: "Filler", Display: strings.Repeat("x", 400), Path: `C:\Windows\System32\svchost.exe -k filler`, Type: 16, Start: 3, State: "Stopped"})

	var chunk bytes.Buffer
	chunk.Write(head)
	chunk.WriteString(`,"services":[`)
	written, limit := int64(0), h.opts.HugeBytes
	for first := true; written < limit; first = false {
		if !first {
			chunk.WriteByte(',')
		}
		chunk.Write(entry)
		if chunk.Len() >= 64*1024 {
			if err := ctx.Err(); err != nil {
				return 1, err
			}
			n, err := w.Write(chunk.Bytes())
			written += int64(n)
			if err != nil {
				return 1, err
			}
			chunk.Reset()
		}
	}
	chunk.WriteString("]}\r\n")
	if _, err := w.Write(chunk.Bytes()); err != nil {
		return 1, err
	}
	return 0, nil
}
