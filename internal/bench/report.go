package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteTable writes the report as a readable table.
func (r *Report) WriteTable(w io.Writer) error {
	if len(r.Modes) == 0 {
		return ErrNoModes
	}
	fmt.Fprintf(w, "svcwatch bench: %d hosts x %d cycles, concurrency %d, latency %s, interval %s\n",
		r.Hosts, r.Cycles, r.Concurrency, r.Latency, r.Interval)
	fmt.Fprintf(w, "machine:   %d CPUs, %s, %s, %s, kernel %s\n", r.Machine.CPUs, r.Machine.CPUModel, r.Machine.Go, r.Machine.OS, r.Machine.Kernel)
	fmt.Fprintf(w, "load:      1-minute load average %.2f before, %.2f after (other work on the machine slows wall-clock figures)\n", r.Machine.LoadBefore, r.Machine.LoadAfter)
	fmt.Fprintf(w, "lab:       %s\n", r.Transport)
	fmt.Fprintf(w, "lab runs:  %s\n\n", r.LabProcess)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := []string{"figure"}
	for _, m := range r.Modes {
		head = append(head, m.Mode)
	}
	both := len(r.Modes) == 2
	if both {
		head = append(head, "ours/naive")
	}
	fmt.Fprintln(tw, strings.Join(head, "\t")+"\t")
	rowText := func(name string, get func(ModeResult) string) {
		cells := []string{name}
		for _, m := range r.Modes {
			cells = append(cells, get(m))
		}
		if both {
			cells = append(cells, "")
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t")
	}
	row := func(name, key, format string, get func(ModeResult) float64) {
		cells := []string{name}
		for _, m := range r.Modes {
			cells = append(cells, fmt.Sprintf(format, get(m)))
		}
		if both {
			if v, ok := r.Ratios[key]; ok && key != "" {
				cells = append(cells, fmt.Sprintf("%.3g", v))
			} else if key != "" {
				cells = append(cells, "-")
			} else {
				cells = append(cells, "")
			}
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t")
	}
	row("cycle wall time, median (s)", "cycle_median_s", "%.2f", func(m ModeResult) float64 { return m.CycleMedian })
	row("cycle wall time, p95 (s)", "cycle_p95_s", "%.2f", func(m ModeResult) float64 { return m.CycleP95 })
	row("hosts per second", "hosts_per_s", "%.0f", func(m ModeResult) float64 { return m.HostsPerSec })
	row("  after the first cycle", "steady_hosts_per_s", "%.0f", func(m ModeResult) float64 { return m.SteadyHostsPS })
	row("  in the last cycle", "last_cycle_hosts_per_s", "%.0f", func(m ModeResult) float64 { return m.LastHostsPS })
	row("poller CPU per host-poll (ms)", "cpu_ms_per_host_poll", "%.3f", func(m ModeResult) float64 { return m.CPUPerPollMS })
	row("  after the first cycle (ms)", "steady_cpu_ms_per_host_poll", "%.3f", func(m ModeResult) float64 { return m.SteadyCPUMS })
	row("poller cores while polling", "", "%.2f", func(m ModeResult) float64 { return m.CoresPolling })
	row("cores for these hosts every 60 s", "", "%.2f", func(m ModeResult) float64 { return m.CoresPer60s })
	row("poller peak RSS (MiB)", "peak_rss_mib", "%.0f", func(m ModeResult) float64 { return m.PeakRSSMiB })
	row("HTTP requests / idle host-poll", "idle_http_requests", "%.1f", func(m ModeResult) float64 { return m.Idle.HTTPRequests })
	row("new connections / idle host-poll", "", "%.2f", func(m ModeResult) float64 { return m.Idle.NewConns })
	row("bytes on the wire / idle host-poll", "idle_wire_bytes", "%.0f", func(m ModeResult) float64 { return m.Idle.WireBytes })
	row("  of which poller → host", "", "%.0f", func(m ModeResult) float64 { return m.Idle.WireToHost })
	row("HTTP requests / idle host-poll, last cycle", "last_cycle_idle_http_requests", "%.1f", func(m ModeResult) float64 { return m.LastIdle.HTTPRequests })
	row("bytes on the wire / idle host-poll, last cycle", "last_cycle_idle_wire_bytes", "%.0f", func(m ModeResult) float64 { return m.LastIdle.WireBytes })
	row("HTTP requests / host-poll with a change", "change_http_requests", "%.1f", func(m ModeResult) float64 { return m.Change.HTTPRequests })
	row("bytes on the wire / host-poll with a change", "change_wire_bytes", "%.0f", func(m ModeResult) float64 { return m.Change.WireBytes })
	row("bytes on the wire / first host-poll", "first_wire_bytes", "%.0f", func(m ModeResult) float64 { return m.First.WireBytes })
	row("detection latency p50 (s)", "detect_p50_s", "%.2f", func(m ModeResult) float64 { return m.DetectP50 })
	row("detection latency p99 (s)", "detect_p99_s", "%.2f", func(m ModeResult) float64 { return m.DetectP99 })
	rowText("alerts detected / injected", func(m ModeResult) string { return fmt.Sprintf("%d/%d", m.Detected, m.Injected) })
	row("failed host-polls", "", "%.0f", func(m ModeResult) float64 { return float64(m.Failures) })
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	for _, m := range r.Modes {
		fmt.Fprintf(w, "%s: %d host-polls (%d idle, %d with a change measured), %d/%d injected psexec alerted; cycles %s s",
			m.Mode, m.HostPolls, m.Idle.Polls, m.Change.Polls, m.Detected, m.Injected, fmtSeconds(m.CycleSeconds))
		fmt.Fprintf(w, "; RSS %.0f MiB at the start", m.StartRSSMiB)
		if m.RSSNote != "" {
			fmt.Fprintf(w, " (%s)", m.RSSNote)
		}
		if m.FirstError != "" {
			fmt.Fprintf(w, "; first error: %s", truncate(m.FirstError, 300))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, "wire bytes: TCP payload both ways at the lab listener (TLS records and handshakes included); HTTP requests include NTLM legs;")
	fmt.Fprintln(w, "the latency delays WS-Management requests only (NTLM challenges are answered at once); CPU and RSS are the poller process's.")
	return nil
}

func fmtSeconds(v []float64) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = fmt.Sprintf("%.2f", x)
	}
	return strings.Join(parts, " ")
}
