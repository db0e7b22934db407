// Package bench measures svcwatch's polling against the lab: N simulated
// Windows hosts behind the lab's WS-Management server (TLS + NTLM, a
// per-request delay), polled for C cycles either by the real pipeline
// ("ours": winrm collector with keep-alive and the inventory digest,
// inventory.Detect, triage, the SQLite store and outbox, Slack delivery to the
// lab's sink, through poller.PollHost) or the way most scripts use
// masterzen/winrm ("naive": a fresh client per host, RunPSWithContext for
// the events and again for the full service list).
//
// It reports per mode: cycle wall time, hosts per second, the poller's CPU
// per host-poll and peak RSS, HTTP requests and bytes on the wire per
// host-poll (counted at the lab's listener), and detection latency from an
// injected psexec to the Slack sink.
//
// How it measures:
//   - The lab (svcwatch bench --serve-lab) runs in a child process, so
//     getrusage and VmHWM cover the poller alone; the Slack sink lives there too.
//   - CPU is getrusage(RUSAGE_SELF) user+sys summed over the polling of each
//     cycle (not the waits between cycles); "after the first cycle" leaves
//     out the baseline, which opens every connection and sends every inventory.
//   - Peak RSS is VmHWM, reset through /proc/self/clear_refs at the start of
//     each mode; both mode runs naive first, then ours, and prints ours first.
//   - Bytes on the wire are TCP payload bytes at the lab's listener (TLS
//     records and handshakes included), attributed to the host named by the
//     connection's first request; HTTP requests include NTLM handshake legs.
//   - A host-poll is "with a change" when a psexec was injected between the
//     host's previous poll and this one; polls during which an injection
//     happened are left out of both idle and change figures.
//   - Detection latency runs from the lab applying the scenario to the sink
//     accepting the first message naming the host (ours: chat.postMessage
//     through the outbox, drained every second like poller.Run's delivery
//     loop; naive: an incoming-webhook post from its in-memory diff).
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/svcwatch/svcwatch/internal/lab/slacksink"
	"github.com/svcwatch/svcwatch/internal/lab/winhost"
)

// Modes.
const (
	ModeOurs  = "ours"
	ModeNaive = "naive"
	ModeBoth  = "both"
)

// Options configure a run.
type Options struct {
	Hosts       int
	Cycles      int
	Latency     time.Duration // server-side delay per WS-Management request (default 5ms; 0 via NoLatency)
	NoLatency   bool
	Mode        string        // ours | naive | both (default ours)
	Concurrency int           // concurrent host polls (default 32)
	Interval    time.Duration // cycle start to cycle start; 0 runs cycles back to back
	Session     string        // ours: winrm.session, shell (default), per-poll or persistent
	// Inject is how many hosts get a psexec per mode for detection latency
	// (default hosts/100 clamped to 5..50; negative: none).
	Inject int
	// LabCommand runs the lab as a child process (which calls ServeLab), so
	// the poller's CPU and RSS are its own; empty runs it in this process.
	LabCommand []string
	TempDir    string       // for the SQLite store (default os.TempDir)
	Logger     *slog.Logger // the pipeline's logs (default: discarded)
	Progress   io.Writer    // one line per cycle (nil: none)
	Seed       uint64       // injection times and hosts (default: time based)
	// AfterPhase, when set, runs at the end of each mode's polling, before
	// its connections and store are closed (heap profiles).
	AfterPhase func(mode string)
}

// DefaultLatency is the per-request delay of a busy DC.
const DefaultLatency = 5 * time.Millisecond

// ErrOptions marks invalid options (a usage error).
var ErrOptions = errors.New("invalid options")

func (o *Options) fill() error {
	if err := o.check(); err != nil {
		return fmt.Errorf("%w: %w", ErrOptions, err)
	}
	return nil
}

func (o *Options) check() error {
	if o.Hosts < 1 || o.Hosts > MaxHosts {
		return fmt.Errorf("bench: --hosts %d: want 1..%d", o.Hosts, MaxHosts)
	}
	if o.Cycles < 1 || o.Cycles > 1000 {
		return fmt.Errorf("bench: --cycles %d: want 1..1000", o.Cycles)
	}
	if o.Mode == "" {
		o.Mode = ModeOurs
	}
	if o.Mode != ModeOurs && o.Mode != ModeNaive && o.Mode != ModeBoth {
		return fmt.Errorf("bench: --mode %q: want ours, naive or both", o.Mode)
	}
	if o.Latency == 0 && !o.NoLatency {
		o.Latency = DefaultLatency
	}
	if o.Concurrency == 0 {
		o.Concurrency = 32
	}
	if o.Concurrency < 1 || o.Concurrency > 1024 {
		return fmt.Errorf("bench: --concurrency %d: want 1..1024", o.Concurrency)
	}
	if o.Interval < 0 {
		return fmt.Errorf("bench: --interval %s: want 0 (back to back) or more", o.Interval)
	}
	if o.Inject == 0 {
		o.Inject = min(max(o.Hosts/100, 5), 50)
	}
	o.Inject = min(o.Inject, o.Hosts)
	if o.TempDir == "" {
		o.TempDir = os.TempDir()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Seed == 0 {
		o.Seed = uint64(time.Now().UnixNano())
	}
	return nil
}

// Machine describes where the benchmark ran.
type Machine struct {
	CPUs     int    `json:"cpus"`
	CPUModel string `json:"cpu_model"`
	Go       string `json:"go"`
	OS       string `json:"os"`
	Kernel   string `json:"kernel"`
	// LoadBefore and LoadAfter are /proc/loadavg's 1-minute figure: other
	// work on the machine slows wall-clock figures (CPU per poll less so).
	LoadBefore float64 `json:"load_before"`
	LoadAfter  float64 `json:"load_after"`
}

// Report is the outcome of Run.
type Report struct {
	Machine     Machine      `json:"machine"`
	Hosts       int          `json:"hosts"`
	Cycles      int          `json:"cycles"`
	Concurrency int          `json:"concurrency"`
	Latency     string       `json:"latency"`
	Interval    string       `json:"interval"`
	Transport   string       `json:"transport"`
	LabProcess  string       `json:"lab_process"`
	Modes       []ModeResult `json:"modes"`
	// Ratios are ours / naive for each figure (both mode only).
	Ratios map[string]float64 `json:"ratios_ours_over_naive,omitempty"`
}

// PollStats are the per host-poll figures of one kind of poll.
type PollStats struct {
	Polls        int     `json:"polls"`
	HTTPRequests float64 `json:"http_requests"` // per host-poll, authentication legs included
	SOAPRequests float64 `json:"soap_requests"`
	WireBytes    float64 `json:"wire_bytes"`      // TCP payload both ways, TLS included
	HTTPBytes    float64 `json:"http_bytes"`      // HTTP messages both ways (headers approximated)
	NewConns     float64 `json:"new_connections"` // TCP (and TLS) connections opened per host-poll
	WireToHost   float64 `json:"wire_bytes_to_host"`
	WireFromHost float64 `json:"wire_bytes_from_host"`
}

// ModeResult holds one mode's figures.
type ModeResult struct {
	Mode          string    `json:"mode"`
	HostPolls     int       `json:"host_polls"`
	Failures      int       `json:"failures"`
	FirstError    string    `json:"first_error,omitempty"`
	CycleSeconds  []float64 `json:"cycle_seconds"`
	CycleMedian   float64   `json:"cycle_median_s"`
	CycleP95      float64   `json:"cycle_p95_s"`
	HostsPerSec   float64   `json:"hosts_per_s"`
	SteadyHostsPS float64   `json:"steady_hosts_per_s"` // cycles after the first
	// LastHostsPS is the last cycle's rate: with 3 or more cycles, the steady
	// state (cycle 2 still reconnects hosts whose first answer was large).
	LastHostsPS   float64   `json:"last_cycle_hosts_per_s"`
	CPUPerPollMS  float64   `json:"cpu_ms_per_host_poll"`
	SteadyCPUMS   float64   `json:"steady_cpu_ms_per_host_poll"` // cycles after the first (keep-alive, baseline known)
	CoresPolling  float64   `json:"cores_while_polling"`
	CoresPer60s   float64   `json:"cores_for_hosts_every_60s"` // steady CPU per poll × hosts / 60 s
	PeakRSSMiB    float64   `json:"peak_rss_mib"`
	StartRSSMiB   float64   `json:"start_rss_mib"` // RSS when the phase started (the peak's floor)
	RSSNote       string    `json:"rss_note,omitempty"`
	First         PollStats `json:"first_poll"`           // cycle 1: new connection, full inventory, baseline
	Idle          PollStats `json:"idle_poll"`            // later polls of unchanged hosts
	LastIdle      PollStats `json:"last_cycle_idle_poll"` // idle polls of the last cycle (steady state)
	Change        PollStats `json:"change_poll"`          // the first poll after the injected psexec
	Injected      int       `json:"injected"`
	Detected      int       `json:"detected"`
	DetectP50     float64   `json:"detect_p50_s"`
	DetectP99     float64   `json:"detect_p99_s"`
	DetectMax     float64   `json:"detect_max_s"`
	TotalSeconds  float64   `json:"total_s"`
	PollingSecond float64   `json:"polling_s"`
}

// Run starts the lab, runs the modes and returns the report.
func Run(ctx context.Context, o Options) (*Report, error) {
	if err := o.fill(); err != nil {
		return nil, err
	}
	lab, err := startLab(ctx, LabOptions{Hosts: o.Hosts, Latency: o.Latency}, o.LabCommand)
	if err != nil {
		return nil, err
	}
	defer lab.stop()
	rep := &Report{
		Machine: machine(), Hosts: o.Hosts, Cycles: o.Cycles, Concurrency: o.Concurrency,
		Latency: o.Latency.String(), Interval: o.Interval.String(), Transport: lab.info.Transport,
	}
	if o.Interval == 0 {
		rep.Interval = "0 (cycles back to back)"
	}
	if lab.child {
		rep.LabProcess = fmt.Sprintf("child process (pid %d): CPU and RSS below are the poller's alone", lab.info.PID)
	} else {
		rep.LabProcess = "in this process: CPU and RSS below include the lab's WS-Management server and hosts"
	}
	names := make([]string, o.Hosts)
	for i := range names {
		names[i] = HostName(i)
	}
	modes := []string{o.Mode}
	if o.Mode == ModeBoth {
		// naive first: memory the runtime keeps after a phase lifts the next
		// phase's RSS floor, and ours has the larger working set.
		modes = []string{ModeNaive, ModeOurs}
	}
	rng := rand.New(rand.NewPCG(o.Seed, 0xbe4c))
	dir, err := os.MkdirTemp(o.TempDir, "svcwatch-bench-")
	if err != nil {
		return nil, fmt.Errorf("bench: temp dir: %w", err)
	}
	defer os.RemoveAll(dir)
	for i, mode := range modes {
		var r runner
		switch mode {
		case ModeOurs:
			r, err = newOurs(ctx, lab.info, names, o.Concurrency, o.Interval, o.Session, dir, o.Logger)
			if err != nil {
				return nil, err
			}
		default:
			r = newNaive(lab.info)
		}
		res, err := runPhase(ctx, mode, r, lab, names, o, injectSample(names, o.Inject, i), rng)
		cerr := r.close()
		if err != nil {
			return nil, err
		}
		if cerr != nil {
			o.Logger.Warn("bench: close", "mode", mode, "err", cerr)
		}
		if !lab.child {
			res.RSSNote = "includes the in-process lab"
		}
		rep.Modes = append(rep.Modes, res)
	}
	slices.SortStableFunc(rep.Modes, func(a, b ModeResult) int { return strings.Compare(b.Mode, a.Mode) }) // ours, naive
	if len(rep.Modes) == 2 {
		rep.Ratios = ratios(rep.Modes[0], rep.Modes[1])
	}
	rep.Machine.LoadAfter = loadAvg()
	return rep, nil
}

// injectSample picks n hosts spread over the fleet, different per phase.
func injectSample(names []string, n, phase int) []string {
	if n <= 0 {
		return nil
	}
	stride := max(len(names)/n, 1)
	seen := map[int]bool{}
	var out []string
	for j := 0; len(out) < n && j < 2*len(names); j++ {
		idx := (phase*(stride/2+1) + j*stride + j/len(names)) % len(names)
		if !seen[idx] {
			seen[idx] = true
			out = append(out, names[idx])
		}
	}
	return out
}

type pollRecord struct {
	start, end int64 // unix ns
	err        error
}

// runCycle polls every host once with k workers.
func runCycle(ctx context.Context, names []string, k int, poll func(context.Context, string) error) []pollRecord {
	recs := make([]pollRecord, len(names))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(k, len(names)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				s := time.Now().UnixNano()
				err := poll(ctx, names[i])
				recs[i] = pollRecord{start: s, end: time.Now().UnixNano(), err: err}
			}
		}()
	}
	for i := range names {
		select {
		case next <- i:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(next)
	wg.Wait()
	return recs
}

func runPhase(ctx context.Context, mode string, r runner, lab *labHandle, names []string, o Options, inject []string, rng *rand.Rand) (ModeResult, error) {
	res := ModeResult{Mode: mode}
	msgs, err := lab.ctl.messages(ctx, 0)
	if err != nil {
		return res, err
	}
	seqBefore := 0
	for _, m := range msgs {
		seqBefore = max(seqBefore, m.Seq)
	}
	prev, err := lab.ctl.counters(ctx)
	if err != nil {
		return res, err
	}
	runtime.GC()
	debug.FreeOSMemory()
	if !resetPeakRSS() {
		res.RSSNote = "peak could not be reset: covers earlier phases too"
	}
	res.StartRSSMiB = float64(currentRSS()) / (1 << 20)

	begin := time.Now()
	r.start(ctx)
	var (
		cpu, polling time.Duration
		steadyCPU    time.Duration
		recs         = make([][]pollRecord, o.Cycles)
		counters     = make([]map[string]HostCounters, o.Cycles)
		injMu        sync.Mutex
		injectAt     = map[string]int64{}
		injWG        sync.WaitGroup
		injErr       error
	)
	injCtx, stopInject := context.WithCancel(ctx)
	defer stopInject()
	for c := range o.Cycles {
		if o.Interval > 0 {
			wait := time.Until(begin.Add(time.Duration(c) * o.Interval))
			if wait > 0 {
				select {
				case <-time.After(wait):
				case <-ctx.Done():
					return res, ctx.Err()
				}
			}
		}
		cpu0, t0 := cpuTime(), time.Now()
		recs[c] = runCycle(ctx, names, o.Concurrency, r.poll)
		wall := time.Since(t0)
		cpu += cpuTime() - cpu0
		if c > 0 {
			steadyCPU += cpuTime() - cpu0
		}
		polling += wall
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		res.CycleSeconds = append(res.CycleSeconds, wall.Seconds())
		now, err := lab.ctl.counters(ctx)
		if err != nil {
			return res, err
		}
		counters[c] = diffCounters(now, prev)
		prev = now
		failed := 0
		for _, rec := range recs[c] {
			if rec.err != nil {
				failed++
				if res.FirstError == "" {
					res.FirstError = rec.err.Error()
				}
			}
		}
		res.Failures += failed
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, "bench: %s cycle %d/%d: %d hosts in %.2fs (%.0f hosts/s), %d failed\n",
				mode, c+1, o.Cycles, len(names), wall.Seconds(), float64(len(names))/wall.Seconds(), failed)
		}
		if c == 0 && len(inject) > 0 && o.Cycles > 1 {
			// Inject between the end of the baseline and the start of the
			// last cycle, at random times when cycles run on an interval.
			var end time.Time
			if o.Interval > 0 {
				end = begin.Add(time.Duration(o.Cycles-1) * o.Interval)
			}
			window := time.Until(end)
			for _, h := range inject {
				var delay time.Duration
				if window > 0 {
					delay = time.Duration(rng.Int64N(int64(window)))
				}
				injWG.Add(1)
				go func() {
					defer injWG.Done()
					if delay > 0 {
						select {
						case <-time.After(delay):
						case <-injCtx.Done():
							return
						}
					}
					at, err := lab.ctl.apply(injCtx, winhost.ScenarioPsExec, []string{h})
					injMu.Lock()
					defer injMu.Unlock()
					if err != nil {
						injErr = err
						return
					}
					injectAt[h] = at[h]
				}()
			}
			if window <= 0 {
				injWG.Wait()
			}
		}
	}
	injWG.Wait()
	if injErr != nil {
		return res, injErr
	}
	r.stop(ctx)
	res.PeakRSSMiB = float64(peakRSS()) / (1 << 20)
	if o.AfterPhase != nil {
		o.AfterPhase(mode)
	}

	// Detection latency: injected → first message about the host from this mode.
	via := slacksink.ViaAPI
	if mode == ModeNaive {
		via = slacksink.ViaWebhook
	}
	res.Injected = len(injectAt)
	got := map[string]float64{}
	deadline := time.Now().Add(30 * time.Second)
	for len(got) < len(injectAt) && time.Now().Before(deadline) {
		msgs, err := lab.ctl.messages(ctx, seqBefore)
		if err != nil {
			return res, err
		}
		for h, at := range injectAt {
			if _, ok := got[h]; ok {
				continue
			}
			for _, m := range msgs {
				if m.Via == via && m.Received >= at && strings.Contains(m.Text, h) {
					got[h] = float64(m.Received-at) / 1e9
					break
				}
			}
		}
		if len(got) < len(injectAt) {
			select {
			case <-time.After(250 * time.Millisecond):
			case <-ctx.Done():
				return res, ctx.Err()
			}
		}
	}
	var lat []float64
	for _, v := range got {
		lat = append(lat, v)
	}
	slices.Sort(lat)
	res.Detected = len(lat)
	res.DetectP50, res.DetectP99 = percentile(lat, 50), percentile(lat, 99)
	if len(lat) > 0 {
		res.DetectMax = lat[len(lat)-1]
	}

	// Per host-poll traffic by kind.
	var first, idle, change, lastIdle acc
	for c := range o.Cycles {
		for i, name := range names {
			rec := recs[c][i]
			if rec.err != nil {
				continue
			}
			hc := counters[c][name]
			switch {
			case c == 0:
				first.add(hc)
			default:
				switch classify(injectAt[name], recs[c-1][i], rec) {
				case kindIdle:
					idle.add(hc)
					if c == o.Cycles-1 {
						lastIdle.add(hc)
					}
				case kindChange:
					change.add(hc)
				}
			}
		}
	}
	res.First, res.Idle, res.Change, res.LastIdle = first.stats(), idle.stats(), change.stats(), lastIdle.stats()

	res.HostPolls = len(names) * o.Cycles
	sorted := slices.Clone(res.CycleSeconds)
	slices.Sort(sorted)
	res.CycleMedian, res.CycleP95 = percentile(sorted, 50), percentile(sorted, 95)
	res.PollingSecond = polling.Seconds()
	res.TotalSeconds = time.Since(begin).Seconds()
	if polling > 0 {
		res.HostsPerSec = float64(res.HostPolls) / polling.Seconds()
		res.CoresPolling = cpu.Seconds() / polling.Seconds()
	}
	res.CPUPerPollMS = cpu.Seconds() * 1000 / float64(res.HostPolls)
	res.SteadyCPUMS, res.SteadyHostsPS = res.CPUPerPollMS, res.HostsPerSec
	if last := res.CycleSeconds[len(res.CycleSeconds)-1]; last > 0 {
		res.LastHostsPS = float64(len(names)) / last
	}
	if later := polling.Seconds() - res.CycleSeconds[0]; o.Cycles > 1 && later > 0 {
		res.SteadyHostsPS = float64(len(names)*(o.Cycles-1)) / later
	}
	if o.Cycles > 1 {
		res.SteadyCPUMS = steadyCPU.Seconds() * 1000 / float64(len(names)*(o.Cycles-1))
	}
	res.CoresPer60s = res.SteadyCPUMS / 1000 * float64(len(names)) / 60
	if res.Failures == len(names)*o.Cycles {
		return res, fmt.Errorf("bench: %s: every host-poll failed; first error: %s", mode, res.FirstError)
	}
	return res, nil
}

const (
	kindIdle = iota
	kindChange
	kindUnclear
)

// classify says what poll cur saw, given the injection time (0: none) and
// the host's previous poll. An injection during either poll is unclear.
func classify(at int64, prevPoll, cur pollRecord) int {
	switch {
	case at == 0 || at < prevPoll.start || at > cur.end:
		return kindIdle
	case at > prevPoll.end && at < cur.start:
		return kindChange
	}
	return kindUnclear
}

type acc struct {
	n                      int
	http, soap, wire, body int64
	conns                  int64
	in, out                int64
}

func (a *acc) add(c HostCounters) {
	a.n++
	a.http += c.HTTPRequests
	a.soap += c.SOAP
	a.wire += c.RawIn + c.RawOut
	a.body += c.HTTPIn + c.HTTPOut
	a.conns += c.Conns
	a.in += c.RawIn
	a.out += c.RawOut
}

func (a acc) stats() PollStats {
	if a.n == 0 {
		return PollStats{}
	}
	n := float64(a.n)
	return PollStats{Polls: a.n, HTTPRequests: float64(a.http) / n, SOAPRequests: float64(a.soap) / n,
		WireBytes: float64(a.wire) / n, HTTPBytes: float64(a.body) / n, NewConns: float64(a.conns) / n,
		WireToHost: float64(a.in) / n, WireFromHost: float64(a.out) / n}
}

func diffCounters(now, prev map[string]HostCounters) map[string]HostCounters {
	out := make(map[string]HostCounters, len(now))
	for h, c := range now {
		p := prev[h]
		out[h] = HostCounters{
			HTTPRequests: c.HTTPRequests - p.HTTPRequests, SOAP: c.SOAP - p.SOAP,
			RawIn: c.RawIn - p.RawIn, RawOut: c.RawOut - p.RawOut,
			HTTPIn: c.HTTPIn - p.HTTPIn, HTTPOut: c.HTTPOut - p.HTTPOut, Conns: c.Conns - p.Conns,
		}
	}
	return out
}

// percentile is the nearest-rank percentile of sorted values (0 when empty).
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

func ratios(a, b ModeResult) map[string]float64 {
	r := map[string]float64{}
	put := func(k string, x, y float64) {
		if y != 0 {
			r[k] = x / y
		}
	}
	put("cycle_median_s", a.CycleMedian, b.CycleMedian)
	put("cycle_p95_s", a.CycleP95, b.CycleP95)
	put("hosts_per_s", a.HostsPerSec, b.HostsPerSec)
	put("steady_hosts_per_s", a.SteadyHostsPS, b.SteadyHostsPS)
	put("last_cycle_hosts_per_s", a.LastHostsPS, b.LastHostsPS)
	put("last_cycle_idle_http_requests", a.LastIdle.HTTPRequests, b.LastIdle.HTTPRequests)
	put("last_cycle_idle_wire_bytes", a.LastIdle.WireBytes, b.LastIdle.WireBytes)
	put("cpu_ms_per_host_poll", a.CPUPerPollMS, b.CPUPerPollMS)
	put("steady_cpu_ms_per_host_poll", a.SteadyCPUMS, b.SteadyCPUMS)
	put("peak_rss_mib", a.PeakRSSMiB, b.PeakRSSMiB)
	put("idle_http_requests", a.Idle.HTTPRequests, b.Idle.HTTPRequests)
	put("idle_wire_bytes", a.Idle.WireBytes, b.Idle.WireBytes)
	put("change_http_requests", a.Change.HTTPRequests, b.Change.HTTPRequests)
	put("change_wire_bytes", a.Change.WireBytes, b.Change.WireBytes)
	put("first_wire_bytes", a.First.WireBytes, b.First.WireBytes)
	put("detect_p50_s", a.DetectP50, b.DetectP50)
	put("detect_p99_s", a.DetectP99, b.DetectP99)
	return r
}

func machine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), Go: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	m.LoadBefore = loadAvg()
	return m
}

// loadAvg is the 1-minute load average (0 when unknown).
func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	var v float64
	fmt.Sscan(string(b), &v)
	return v
}

// ErrNoModes is returned by WriteTable for an empty report.
var ErrNoModes = errors.New("bench: the report has no modes")
