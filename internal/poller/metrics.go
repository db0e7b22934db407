package poller

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/svcwatch/svcwatch/internal/inventory"
	"github.com/svcwatch/svcwatch/internal/notify"
)

// Metrics are svcwatch's Prometheus metrics. A nil *Metrics records nothing.
type Metrics struct {
	Registry        *prometheus.Registry
	polls           *prometheus.CounterVec
	pollDuration    prometheus.Histogram
	hosts           prometheus.Gauge
	findingsTotal   *prometheus.CounterVec
	lastDiscovery   prometheus.Gauge
	discoveries     *prometheus.CounterVec
	SlackErrors     *prometheus.CounterVec
	classifyFailure func(error) string
}

// NewMetrics registers svcwatch's metrics in a new registry. outboxDepth is
// sampled on every scrape; classify names a poll failure's cause
// (auth, quota, timeout, ...) for the polls_total result label.
func NewMetrics(outboxDepth func() float64, classify func(error) string) *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		polls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "svcwatch_polls_total", Help: "Host polls by result (ok or the failure class).",
		}, []string{"result"}),
		pollDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "svcwatch_poll_duration_seconds", Help: "Duration of one host poll.",
			Buckets: []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120},
		}),
		hosts: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "svcwatch_hosts_monitored", Help: "Hosts in the monitored set.",
		}),
		findingsTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "svcwatch_findings_total", Help: "Findings by kind, severity and whether the allowlist suppressed them.",
		}, []string{"kind", "severity", "suppressed"}),
		lastDiscovery: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "svcwatch_last_successful_discovery_timestamp_seconds", Help: "Unix time of the last successful discovery.",
		}),
		discoveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "svcwatch_discoveries_total", Help: "Discoveries by result.",
		}, []string{"result"}),
		SlackErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "svcwatch_slack_errors_total", Help: "Failed Slack delivery attempts by class (transient, rate_limited, destination, rejected).",
		}, []string{"error"}),
		classifyFailure: classify,
	}
	m.Registry.MustRegister(m.polls, m.pollDuration, m.hosts, m.findingsTotal, m.lastDiscovery, m.discoveries, m.SlackErrors,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	// Series that exist from the start, so a dashboard or alert rule sees 0
	// rather than no data before the first Slack failure.
	for _, class := range notify.FailureClasses {
		m.SlackErrors.WithLabelValues(class)
	}
	m.polls.WithLabelValues("ok")
	if outboxDepth != nil {
		m.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "svcwatch_outbox_depth", Help: "Findings waiting for delivery.",
		}, outboxDepth))
	}
	return m
}

func (m *Metrics) poll(err error, d time.Duration) {
	if m == nil {
		return
	}
	m.pollDuration.Observe(d.Seconds())
	result := "ok"
	if err != nil {
		result = "error"
		if m.classifyFailure != nil {
			result = m.classifyFailure(err)
		}
	}
	m.polls.WithLabelValues(result).Inc()
}

func (m *Metrics) findings(fs []inventory.Finding) {
	if m == nil {
		return
	}
	for _, f := range fs {
		sup := "false"
		if f.Suppressed {
			sup = "true"
		}
		m.findingsTotal.WithLabelValues(string(f.Kind), f.Severity.String(), sup).Inc()
	}
}

func (m *Metrics) hostsMonitored(n int) {
	if m == nil {
		return
	}
	m.hosts.Set(float64(n))
}

func (m *Metrics) discovery(ok bool, at time.Time) {
	if m == nil {
		return
	}
	if ok {
		m.discoveries.WithLabelValues("ok").Inc()
		m.lastDiscovery.Set(float64(at.Unix()))
		return
	}
	m.discoveries.WithLabelValues("error").Inc()
}

// SlackError counts a failed delivery by its class.
func (m *Metrics) SlackError(class string) {
	if m == nil {
		return
	}
	m.SlackErrors.WithLabelValues(class).Inc()
}
