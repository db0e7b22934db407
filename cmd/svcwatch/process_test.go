package main

// Process tests: the built svcwatch binary against `svcwatch lab serve`,
// the way an operator runs them. Every child process is killed when its test
// ends; every server binds loopback.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/svcwatch/svcwatch/internal/config"
	"github.com/svcwatch/svcwatch/internal/lab"
	"github.com/svcwatch/svcwatch/internal/lab/slacksink"
	"github.com/svcwatch/svcwatch/internal/testutil"
)

// The process tests' binary: built once, on first use, into a directory
// TestMain removes at the end.
var (
	binDir      string
	binOnce     sync.Once
	svcwatchBin string
	binBuildErr error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "svcwatch-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "process tests: temp dir:", err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// binary builds svcwatch (plain go build) the first time a test needs it.
func binary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
		if _, err := os.Stat(goTool); err != nil {
			goTool = "go"
		}
		out := filepath.Join(binDir, "svcwatch")
		build := exec.Command(goTool, "build", "-o", out, ".")
		if b, err := build.CombinedOutput(); err != nil {
			binBuildErr = fmt.Errorf("go build: %v\n%s", err, b)
			return
		}
		svcwatchBin = out
	})
	if binBuildErr != nil {
		t.Fatal(binBuildErr)
	}
	return svcwatchBin
}

// proc is a running svcwatch child.
type proc struct {
	t              *testing.T
	name           string
	cmd            *exec.Cmd
	stdout, stderr testutil.Buffer
	done           chan struct{}
	state          *os.ProcessState
}

// start runs svcwatch with args; the process is killed when the test ends.
func startProc(t *testing.T, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, name: strings.Join(args, " "), done: make(chan struct{})}
	p.cmd = exec.Command(binary(t), args...)
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	p.cmd.Env = os.Environ()
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start svcwatch %s: %v", p.name, err)
	}
	go func() {
		p.cmd.Wait()
		p.state = p.cmd.ProcessState
		close(p.done)
	}()
	t.Cleanup(func() {
		// A stop first, so lab serve removes its temp dir; then a kill.
		select {
		case <-p.done:
		default:
			p.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.done:
			case <-time.After(15 * time.Second):
				p.cmd.Process.Kill()
				<-p.done
			}
		}
		if t.Failed() {
			t.Logf("svcwatch %s\n--- stdout:\n%s\n--- stderr (last 40 lines):\n%s", p.name, p.stdout.String(), tailLines(p.stderr.String(), 40))
		}
	})
	return p
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// wait waits for the process to exit and returns its exit code, or -1 and
// false when it is still running after d.
func (p *proc) wait(d time.Duration) (int, bool) {
	select {
	case <-p.done:
		return p.state.ExitCode(), true
	case <-time.After(d):
		return -1, false
	}
}

func (p *proc) signal(sig os.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal %v to svcwatch %s: %v", sig, p.name, err)
	}
}

// run runs svcwatch to completion (bounded) and returns its exit code and output.
func runProc(t *testing.T, timeout time.Duration, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	p := startProc(t, args...)
	code, ok := p.wait(timeout)
	if !ok {
		t.Fatalf("svcwatch %s did not exit within %s", p.name, timeout)
	}
	return code, p.stdout.String(), p.stderr.String()
}

// freeLoopbackAddr returns a loopback address nobody listens on right now.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

var procHTTP = &http.Client{Timeout: 10 * time.Second}

// labServe is a running `svcwatch lab serve`.
type labServe struct {
	proc    *proc
	config  string // the config it wrote
	control string // http://127.0.0.1:PORT
}

// startLabServe runs `svcwatch lab serve` and waits until its control API answers.
func startLabServe(t *testing.T, hosts int, interval time.Duration) *labServe {
	t.Helper()
	dir := t.TempDir()
	addr := freeLoopbackAddr(t)
	ls := &labServe{config: filepath.Join(dir, "lab.yaml"), control: "http://" + addr}
	ls.proc = startProc(t, "lab", "serve", "--hosts", strconv.Itoa(hosts), "--config-out", ls.config,
		"--control", addr, "--interval", interval.String())
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := procHTTP.Get(ls.control + "/hosts")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if code, exited := ls.proc.wait(0); exited {
			t.Fatalf("lab serve exited with %d before its control API answered", code)
		}
		if time.Now().After(deadline) {
			t.Fatalf("lab serve's control API did not answer within 60s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := os.Stat(ls.config); err != nil {
		t.Fatalf("lab serve did not write its config: %v", err)
	}
	return ls
}

// tune loads the lab's config, lets edit change it and writes it to a new
// file next to it, returning the path.
func (ls *labServe) tune(t *testing.T, name string, edit func(*config.Config)) string {
	t.Helper()
	cfg, err := config.Load(ls.config)
	if err != nil {
		t.Fatalf("load the lab's config: %v", err)
	}
	edit(cfg)
	path := filepath.Join(filepath.Dir(ls.config), name)
	if err := os.WriteFile(path, []byte(cfg.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := config.Load(path); err != nil {
		t.Fatalf("the edited config does not load: %v", err)
	}
	return path
}

func (ls *labServe) post(t *testing.T, path string) {
	t.Helper()
	resp, err := procHTTP.Post(ls.control+path, "application/json", nil)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		t.Fatalf("POST %s: %s: %s", path, resp.Status, body)
	}
}

// procGet GETs url and fails the test unless it answers 200; the caller
// closes the body.
func procGet(t *testing.T, url string) *http.Response {
	t.Helper()
	resp, err := procHTTP.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	return resp
}

func procGetJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp := procGet(t, url)
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

func (ls *labServe) hosts(t *testing.T) []lab.HostStatus {
	t.Helper()
	var hs []lab.HostStatus
	procGetJSON(t, ls.control+"/hosts", &hs)
	return hs
}

func (ls *labServe) messages(t *testing.T) []slacksink.Message {
	t.Helper()
	var ms []slacksink.Message
	procGetJSON(t, ls.control+"/slack/messages", &ms)
	return ms
}

// commands returns how many WinRM commands each host (short name) has run:
// one per poll.
func (ls *labServe) commands(t *testing.T) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, h := range ls.hosts(t) {
		short, _, _ := strings.Cut(h.Name, ".")
		out[short] = h.Traffic.Commands
	}
	return out
}

// waitPolls waits until every host has started at least n polls (polls of
// one host never overlap, so n-1 of them have completed).
func (ls *labServe) waitPolls(t *testing.T, n int64, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		least := int64(-1)
		for _, c := range ls.commands(t) {
			if least < 0 || c < least {
				least = c
			}
		}
		if least >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("hosts not polled %d times within %s: %v", n, within, ls.commands(t))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// clearSlackFaults uses up the sink's queued failure injections (the
// control API has no route to clear them) by calling auth.test with a wrong
// token until the sink answers it as Slack would: invalid_auth.
func clearSlackFaults(t *testing.T, apiURL string) {
	t.Helper()
	for i := 0; i < 100_000; i++ {
		resp, err := procHTTP.PostForm(strings.TrimSuffix(apiURL, "/")+"/auth.test", map[string][]string{"token": {"xoxb-not-the-token"}})
		if err != nil {
			t.Fatalf("clear the Slack faults: %v", err)
		}
		var body struct {
			Error string `json:"error"`
		}
		derr := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK && derr == nil && body.Error == "invalid_auth" {
			return
		}
	}
	t.Fatal("the Slack sink kept failing")
}

// slackAttempts is how many message requests the sink has seen.
func (ls *labServe) slackAttempts(t *testing.T) int {
	t.Helper()
	var st struct {
		Attempts int `json:"attempts"`
	}
	procGetJSON(t, ls.control+"/slack/stats", &st)
	return st.Attempts
}

// alertsFor counts the messages whose header names the subject.
func alertsFor(ms []slacksink.Message, subject string) int {
	n := 0
	for _, m := range ms {
		for _, o := range m.TextObjects() {
			// "SEVERITY · Title: subject" with " on host" after it or not.
			if o.Block == "header" && (strings.HasSuffix(o.Text, ": "+subject) || strings.Contains(o.Text, ": "+subject+" on ")) {
				n++
			}
		}
	}
	return n
}

func readableAll(ms []slacksink.Message) string {
	var b strings.Builder
	for _, m := range ms {
		b.WriteString(m.Readable())
	}
	return b.String()
}

func skipProcessShort(t *testing.T) {
	if testing.Short() {
		t.Skip("process test: runs svcwatch and its lab as child processes")
	}
}

func TestProcessOnceAgainstLabServe(t *testing.T) {
	skipProcessShort(t)
	t.Parallel()
	ls := startLabServe(t, 5, 30*time.Second)

	code, stdout, stderr := runProc(t, 90*time.Second, "once", "--config", ls.config)
	if code != exitOK {
		t.Fatalf("once exited %d, want 0\nstdout:\n%s\nstderr:\n%s", code, stdout, tailLines(stderr, 30))
	}
	if !strings.Contains(stdout, "polled 5 hosts, 0 failed") {
		t.Errorf("once stdout does not report the 5 hosts polled:\n%s", stdout)
	}
	// A first run records the baseline: nothing to say on Slack.
	if ms := ls.messages(t); len(ms) != 0 {
		t.Errorf("the baseline run sent %d Slack messages, want none:\n%s", len(ms), readableAll(ms))
	}
	for name, n := range ls.commands(t) {
		if n != 1 {
			t.Errorf("%s: %d WinRM commands, want 1 (one poll per host)", name, n)
		}
	}

	// An attack between two runs: the second run alerts it once.
	ls.post(t, "/hosts/dc01/scenarios/psexec")
	code, stdout, stderr = runProc(t, 90*time.Second, "once", "--config", ls.config)
	if code != exitOK {
		t.Fatalf("second once exited %d\nstdout:\n%s\nstderr:\n%s", code, stdout, tailLines(stderr, 30))
	}
	if ms := ls.messages(t); len(ms) != 1 || alertsFor(ms, "PSEXESVC") != 1 {
		t.Errorf("after psexec on dc01: %d messages, want one about PSEXESVC:\n%s", len(ms), readableAll(ms))
	}

	// A host that cannot be polled: exit 1, the host listed.
	ls.post(t, "/hosts/srv01/down")
	code, stdout, _ = runProc(t, 90*time.Second, "once", "--config", ls.config)
	if code != exitFailed || !strings.Contains(stdout, "FAILED srv01.lab.example") {
		t.Errorf("once with srv01 down exited %d, want 1 and srv01 listed:\n%s", code, stdout)
	}
}

// setLine replaces the value of the one line "    key: ..." in a YAML text.
func setLine(text, key, value string) string {
	re := regexp.MustCompile(`(?m)^(\s+` + regexp.QuoteMeta(key) + `:) .*$`)
	if len(re.FindAllString(text, -1)) != 1 {
		return "# no single line for " + key + "\n" + text
	}
	return re.ReplaceAllString(text, "${1} "+value)
}

func TestProcessBrokenConfig(t *testing.T) {
	skipProcessShort(t)
	t.Parallel()
	ls := startLabServe(t, 3, 30*time.Second)
	good, err := os.ReadFile(ls.config)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(good, []byte("\nwinrm:\n")) || !bytes.Contains(good, []byte("\npoll:\n")) {
		t.Fatalf("unexpected shape of the lab's config:\n%s", good)
	}
	dir := t.TempDir()
	cases := []struct {
		name    string
		content string
		want    []string // in the one stderr line
	}{
		{"unknown top-level key", string(good) + "pollz:\n    interval: 5m\n", []string{"pollz"}},
		{"unknown nested key", strings.Replace(string(good), "\nwinrm:\n", "\nwinrm:\n    timout: 5s\n", 1), []string{"timout"}},
		{"bad value", setLine(string(good), "unreachable_after", "-3"), []string{"poll.unreachable_after"}},
		{"not a duration", setLine(string(good), "lookback", "yesterday"), []string{"poll.lookback"}},
		{"not yaml", "state: [unclosed\n", []string{"config"}},
		{"missing file", "", []string{"no such file"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-")+".yaml")
			if c.content != "" {
				if err := os.WriteFile(path, []byte(c.content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			for _, cmd := range []string{"once", "run"} {
				code, stdout, stderr := runProc(t, 30*time.Second, cmd, "--config", path)
				if code != exitSetup {
					t.Errorf("%s: exit %d, want 2\nstdout:\n%s\nstderr:\n%s", cmd, code, stdout, stderr)
					continue
				}
				if strings.Count(stderr, "\n") != 1 || !strings.HasSuffix(stderr, "\n") {
					t.Errorf("%s: stderr is not one line:\n%s", cmd, stderr)
				}
				for _, w := range c.want {
					if !strings.Contains(stderr, w) {
						t.Errorf("%s: stderr does not mention %q: %s", cmd, w, stderr)
					}
				}
			}
		})
	}
}

// TestProcessSIGTERMDuringPoll stops `svcwatch run` while a poll is in
// flight: it exits 0 within winrm.timeout + 5s, and a restart loses nothing.
func TestProcessSIGTERMDuringPoll(t *testing.T) {
	skipProcessShort(t)
	t.Parallel()
	ls := startLabServe(t, 5, time.Second)
	const winrmTimeout = 4 * time.Second
	cfgPath := ls.tune(t, "run.yaml", func(c *config.Config) {
		c.WinRM.Timeout = winrmTimeout
		c.Poll.Jitter = 0
	})

	first := startProc(t, "run", "--config", cfgPath)
	ls.waitPolls(t, 2, 60*time.Second) // every host baselined
	if ms := ls.messages(t); len(ms) != 0 {
		t.Fatalf("baseline sent %d messages:\n%s", len(ms), readableAll(ms))
	}

	// dc02 turns slow; once its next poll has started, dc01 is attacked and
	// the daemon is told to stop.
	before := ls.commands(t)["dc02"]
	ls.post(t, "/hosts/dc02/faults/slow")
	deadline := time.Now().Add(30 * time.Second)
	for ls.commands(t)["dc02"] <= before {
		if time.Now().After(deadline) {
			t.Fatal("no poll of dc02 started within 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	ls.post(t, "/hosts/dc01/scenarios/psexec")
	stopAt := time.Now()
	first.signal(syscall.SIGTERM)
	code, exited := first.wait(winrmTimeout + 5*time.Second)
	if !exited {
		t.Fatalf("run did not exit within winrm.timeout + 5s = %s of SIGTERM", winrmTimeout+5*time.Second)
	}
	t.Logf("run stopped %s after SIGTERM", time.Since(stopAt).Round(time.Millisecond))
	if code != exitOK {
		t.Fatalf("run exited %d after SIGTERM, want 0", code)
	}
	if !strings.Contains(first.stderr.String(), "stopped") {
		t.Errorf("run did not log its clean stop")
	}

	// Restart with dc02 healthy: the attack is alerted once across both runs,
	// and nothing else is said.
	ls.post(t, "/hosts/dc02/faults/none")
	second := startProc(t, "run", "--config", cfgPath)
	deadline = time.Now().Add(30 * time.Second)
	for alertsFor(ls.messages(t), "PSEXESVC") < 1 {
		if time.Now().After(deadline) {
			t.Fatalf("the psexec on dc01 was never alerted:\n%s", readableAll(ls.messages(t)))
		}
		time.Sleep(100 * time.Millisecond)
	}
	mark := ls.commands(t)
	ls.waitPolls(t, mark["dc01"]+3, 30*time.Second) // a few more polls of every host
	second.signal(syscall.SIGTERM)
	if code, exited := second.wait(winrmTimeout + 5*time.Second); !exited || code != exitOK {
		t.Fatalf("second run: exited %v with %d, want 0", exited, code)
	}
	ms := ls.messages(t)
	if len(ms) != 1 || alertsFor(ms, "PSEXESVC") != 1 {
		t.Fatalf("across the two runs: %d messages, want exactly one about PSEXESVC:\n%s", len(ms), readableAll(ms))
	}
}

// TestProcessSIGKILLBeforeDelivery kills `svcwatch run` while its findings
// sit committed in the outbox (Slack failing), then restarts it with Slack
// healthy: every finding arrives, at most one of them twice.
func TestProcessSIGKILLBeforeDelivery(t *testing.T) {
	skipProcessShort(t)
	t.Parallel()
	ls := startLabServe(t, 5, time.Second)
	metricsAddr := freeLoopbackAddr(t)
	var apiURL string
	cfgPath := ls.tune(t, "run.yaml", func(c *config.Config) {
		c.WinRM.Timeout = 10 * time.Second
		c.Metrics.Listen = metricsAddr
		apiURL = c.Slack.APIURL
	})

	first := startProc(t, "run", "--config", cfgPath)
	ls.waitPolls(t, 2, 60*time.Second)

	attemptsBefore := ls.slackAttempts(t)
	ls.post(t, "/slack/fail?status=503&count=500")
	attacks := map[string]string{"dc01": "psexec", "dc02": "mimidrv", "srv01": "silent-registry"}
	subjects := map[string]string{"dc01": "PSEXESVC", "dc02": "mimidrv", "srv01": "WinSvcUpdHelper"}
	for host, scenario := range attacks {
		ls.post(t, "/hosts/"+host+"/scenarios/"+scenario)
	}
	// Committed, not delivered: the outbox holds all three, and the
	// dispatcher is trying (and failing) to send them.
	deadline := time.Now().Add(30 * time.Second)
	for {
		depth := scrape(t, "http://"+metricsAddr+"/metrics").sum("svcwatch_outbox_depth")
		if depth == float64(len(attacks)) && ls.slackAttempts(t) > attemptsBefore {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("findings not committed to the outbox and tried within 30s: outbox depth %v, Slack attempts %d",
				depth, ls.slackAttempts(t)-attemptsBefore)
		}
		time.Sleep(100 * time.Millisecond)
	}
	first.signal(syscall.SIGKILL)
	if _, exited := first.wait(10 * time.Second); !exited {
		t.Fatal("SIGKILL did not end the process")
	}
	if ms := ls.messages(t); len(ms) != 0 {
		t.Fatalf("messages arrived while Slack was failing:\n%s", readableAll(ms))
	}

	clearSlackFaults(t, apiURL)
	second := startProc(t, "run", "--config", cfgPath)
	deadline = time.Now().Add(60 * time.Second)
	for {
		ms := ls.messages(t)
		all := true
		for _, s := range subjects {
			if alertsFor(ms, s) == 0 {
				all = false
			}
		}
		if all {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not every finding arrived after the restart:\n%s", readableAll(ms))
		}
		time.Sleep(100 * time.Millisecond)
	}
	mark := ls.commands(t)
	ls.waitPolls(t, mark["dc01"]+3, 30*time.Second)
	second.signal(syscall.SIGTERM)
	if code, exited := second.wait(15 * time.Second); !exited || code != exitOK {
		t.Fatalf("second run: exited %v with %d, want 0", exited, code)
	}
	ms := ls.messages(t)
	repeats := len(ms) - len(subjects)
	for host, s := range subjects {
		if n := alertsFor(ms, s); n < 1 || n > 2 {
			t.Errorf("%s on %s: %d messages, want 1 (2 at most if it was in flight)", attacks[host], host, n)
		}
	}
	if repeats < 0 || repeats > 1 {
		t.Errorf("%d messages for %d findings: at most the one in-flight message may repeat:\n%s", len(ms), len(subjects), readableAll(ms))
	}
}

// metricSamples is a scraped /metrics page: sample name → label text → value.
type metricSamples map[string]map[string]float64

func scrape(t *testing.T, url string) metricSamples {
	t.Helper()
	resp := procGet(t, url)
	defer resp.Body.Close()
	out := metricSamples{}
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 16<<20))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			t.Fatalf("bad metrics line %q", line)
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad metrics value in %q: %v", line, err)
		}
		name, labels := line[:i], ""
		if j := strings.IndexByte(name, '{'); j >= 0 {
			name, labels = name[:j], name[j:]
		}
		if out[name] == nil {
			out[name] = map[string]float64{}
		}
		out[name][labels] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read %s: %v", url, err)
	}
	return out
}

// sum adds a metric's samples whose labels contain every one of match.
func (m metricSamples) sum(name string, match ...string) float64 {
	total := 0.0
next:
	for labels, v := range m[name] {
		for _, s := range match {
			if !strings.Contains(labels, s) {
				continue next
			}
		}
		total += v
	}
	return total
}

// TestProcessMetrics scrapes /metrics of `svcwatch run` against `lab serve`.
func TestProcessMetrics(t *testing.T) {
	skipProcessShort(t)
	t.Parallel()
	ls := startLabServe(t, 5, time.Second)
	addr := freeLoopbackAddr(t)
	var apiURL string
	cfgPath := ls.tune(t, "run.yaml", func(c *config.Config) {
		c.Metrics.Listen = addr
		c.WinRM.Timeout = 10 * time.Second
		apiURL = c.Slack.APIURL
	})
	daemon := startProc(t, "run", "--config", cfgPath)
	base := "http://" + addr

	// The endpoint comes up with the daemon.
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := procHTTP.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if _, exited := daemon.wait(0); exited {
			t.Fatal("run exited")
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz did not answer 200 within 30s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	ls.waitPolls(t, 2, 60*time.Second)
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := procHTTP.Get(base + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %s, want 200", path, resp.Status)
		}
	}

	// A finding while Slack refuses the channel: it waits in the outbox and
	// the error is counted. (A 503 would do too, but the dispatcher counts
	// an error only when a whole Drain gives up, ~2 minutes of retries.)
	ls.post(t, "/slack/reject?error=channel_not_found&count=1000")
	ls.post(t, "/hosts/dc03/scenarios/smbexec")
	var m metricSamples
	deadline = time.Now().Add(30 * time.Second)
	for {
		m = scrape(t, base+"/metrics")
		if m.sum("svcwatch_outbox_depth") >= 1 && m.sum("svcwatch_slack_errors_total") >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no outbox depth and Slack error within 30s: outbox %v, errors %v",
				m.sum("svcwatch_outbox_depth"), m.sum("svcwatch_slack_errors_total"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	now := float64(time.Now().Unix())
	checks := []struct {
		what string
		got  float64
		ok   func(float64) bool
	}{
		{`svcwatch_polls_total{result="ok"}`, m.sum("svcwatch_polls_total", `result="ok"`), func(v float64) bool { return v >= 10 }},
		{"svcwatch_poll_duration_seconds_count", m.sum("svcwatch_poll_duration_seconds_count"), func(v float64) bool { return v >= 10 }},
		{"svcwatch_poll_duration_seconds_sum", m.sum("svcwatch_poll_duration_seconds_sum"), func(v float64) bool { return v > 0 }},
		{"svcwatch_hosts_monitored", m.sum("svcwatch_hosts_monitored"), func(v float64) bool { return v == 5 }},
		{`svcwatch_findings_total{kind="ephemeral"}`, m.sum("svcwatch_findings_total", `kind="ephemeral"`), func(v float64) bool { return v == 1 }},
		{"svcwatch_outbox_depth", m.sum("svcwatch_outbox_depth"), func(v float64) bool { return v == 1 }},
		{`svcwatch_slack_errors_total{error="destination"}`, m.sum("svcwatch_slack_errors_total", `error="destination"`), func(v float64) bool { return v >= 1 }},
		{"svcwatch_last_successful_discovery_timestamp_seconds", m.sum("svcwatch_last_successful_discovery_timestamp_seconds"),
			func(v float64) bool { return v > now-300 && v <= now+1 }},
	}
	for _, c := range checks {
		if !c.ok(c.got) {
			t.Errorf("%s = %v", c.what, c.got)
		}
	}

	// Slack recovers: the finding is delivered, the outbox empties.
	clearSlackFaults(t, apiURL)
	deadline = time.Now().Add(60 * time.Second)
	for {
		m = scrape(t, base+"/metrics")
		if m.sum("svcwatch_outbox_depth") == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("outbox depth still %v 60s after Slack recovered", m.sum("svcwatch_outbox_depth"))
		}
		time.Sleep(200 * time.Millisecond)
	}
	if ms := ls.messages(t); len(ms) != 1 {
		t.Errorf("%d messages after recovery, want the one smbexec alert:\n%s", len(ms), readableAll(ms))
	}

	daemon.signal(syscall.SIGTERM)
	if code, exited := daemon.wait(15 * time.Second); !exited || code != exitOK {
		t.Fatalf("run: exited %v with %d after SIGTERM, want 0", exited, code)
	}
	// The endpoint is gone with the process.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/healthz", nil); req != nil {
		if resp, err := procHTTP.Do(req); err == nil {
			resp.Body.Close()
			t.Errorf("/healthz still answers after the daemon exited")
		}
	}
}

// startSlowPoll makes host slow and waits until a poll of it is in flight.
func (ls *labServe) startSlowPoll(t *testing.T, host string) {
	t.Helper()
	before := ls.commands(t)[host]
	ls.post(t, "/hosts/"+host+"/faults/slow")
	deadline := time.Now().Add(30 * time.Second)
	for ls.commands(t)[host] <= before {
		if time.Now().After(deadline) {
			t.Fatalf("no poll of %s started within 30s", host)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestProcessSecondSignal: a second SIGTERM while the first waits for an
// in-flight poll ends the process at once (exit 1), not at the poll deadline.
func TestProcessSecondSignal(t *testing.T) {
	skipProcessShort(t)
	t.Parallel()
	ls := startLabServe(t, 3, time.Second)
	const winrmTimeout = 30 * time.Second
	cfgPath := ls.tune(t, "run.yaml", func(c *config.Config) { c.WinRM.Timeout = winrmTimeout })
	daemon := startProc(t, "run", "--config", cfgPath)
	ls.waitPolls(t, 2, 60*time.Second)
	ls.startSlowPoll(t, "dc01")

	daemon.signal(syscall.SIGTERM)
	if _, exited := daemon.wait(time.Second); exited {
		t.Fatal("run exited at the first signal although a poll was in flight")
	}
	stopAt := time.Now()
	daemon.signal(syscall.SIGTERM)
	code, exited := daemon.wait(5 * time.Second)
	if !exited {
		t.Fatal("run did not exit within 5s of a second SIGTERM")
	}
	t.Logf("exited %s after the second signal", time.Since(stopAt).Round(time.Millisecond))
	if code != exitFailed {
		t.Errorf("exit code %d after a second signal, want 1", code)
	}
	if !strings.Contains(daemon.stderr.String(), "second signal") {
		t.Errorf("stderr does not say why it exited at once:\n%s", tailLines(daemon.stderr.String(), 5))
	}
}

// TestProcessSIGHUPReload: a broken file on SIGHUP is refused and the daemon
// keeps polling; a valid one is loaded.
func TestProcessSIGHUPReload(t *testing.T) {
	skipProcessShort(t)
	t.Parallel()
	ls := startLabServe(t, 3, time.Second)
	cfgPath := ls.tune(t, "run.yaml", func(c *config.Config) { c.WinRM.Timeout = 10 * time.Second })
	good, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	daemon := startProc(t, "run", "--config", cfgPath)
	ls.waitPolls(t, 2, 60*time.Second)

	waitLog := func(what string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !strings.Contains(daemon.stderr.String(), what) {
			if _, exited := daemon.wait(0); exited {
				t.Fatalf("run exited while waiting for %q", what)
			}
			if time.Now().After(deadline) {
				t.Fatalf("run did not log %q within 30s", what)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	if err := os.WriteFile(cfgPath, append(append([]byte{}, good...), "pollz: 1\n"...), 0o600); err != nil {
		t.Fatal(err)
	}
	daemon.signal(syscall.SIGHUP)
	waitLog("reload refused")
	mark := ls.commands(t)
	ls.waitPolls(t, mark["dc01"]+2, 30*time.Second) // still polling with the old configuration

	if err := os.WriteFile(cfgPath, good, 0o600); err != nil {
		t.Fatal(err)
	}
	daemon.signal(syscall.SIGHUP)
	waitLog("configuration reloaded")
	mark = ls.commands(t)
	ls.waitPolls(t, mark["dc01"]+2, 30*time.Second) // and polling with the new one

	ls.post(t, "/hosts/dc02/scenarios/psexec")
	deadline := time.Now().Add(30 * time.Second)
	for alertsFor(ls.messages(t), "PSEXESVC") == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no alert after the reload")
		}
		time.Sleep(100 * time.Millisecond)
	}
	daemon.signal(syscall.SIGTERM)
	if code, exited := daemon.wait(15 * time.Second); !exited || code != exitOK {
		t.Fatalf("run: exited %v with %d after SIGTERM, want 0", exited, code)
	}
	if ms := ls.messages(t); len(ms) != 1 {
		t.Errorf("%d messages, want the one psexec alert (a reload must not re-alert):\n%s", len(ms), readableAll(ms))
	}
}
