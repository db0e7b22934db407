package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"time"

	"github.com/svcwatch/svcwatch/internal/inventory"
)

// control talks to a lab's control API (in this process or a child).
type control struct {
	base string
	hc   *http.Client
}

func newControl(base string) *control {
	return &control{base: base, hc: &http.Client{Timeout: 60 * time.Second}}
}

func (c *control) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("bench: lab control %s: %w", path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("bench: lab control %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("bench: lab control %s: HTTP %d: %s", path, resp.StatusCode, bytes.TrimSpace(data))
	}
	return json.Unmarshal(data, out)
}

func (c *control) counters(ctx context.Context) (map[string]HostCounters, error) {
	var out map[string]HostCounters
	err := c.do(ctx, http.MethodGet, "/counters", nil, &out)
	return out, err
}

func (c *control) apply(ctx context.Context, scenario string, hosts []string) (map[string]int64, error) {
	var out map[string]int64
	err := c.do(ctx, http.MethodPost, "/apply", applyRequest{Scenario: scenario, Hosts: hosts}, &out)
	return out, err
}

func (c *control) messages(ctx context.Context, after int) ([]SinkMessage, error) {
	var out []SinkMessage
	err := c.do(ctx, http.MethodGet, "/messages?after="+strconv.Itoa(after), nil, &out)
	return out, err
}

// labHandle is a running lab and how to stop it.
type labHandle struct {
	info  LabInfo
	ctl   *control
	child bool
	stop  func() error
}

// startLab runs the lab in-process, or as the child command when cmd is
// set (the child must call ServeLab with its stdin and stdout).
func startLab(ctx context.Context, opts LabOptions, cmd []string) (*labHandle, error) {
	if len(cmd) == 0 {
		l, err := StartLab(opts)
		if err != nil {
			return nil, err
		}
		info := l.Info()
		info.PID = os.Getpid()
		return &labHandle{info: info, ctl: newControl(info.Control), stop: l.Close}, nil
	}
	c := exec.Command(cmd[0], cmd[1:]...)
	c.Stderr = os.Stderr
	stdin, err := c.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := c.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := c.Start(); err != nil {
		return nil, fmt.Errorf("bench: start the lab process %s: %w", cmd[0], err)
	}
	waitErr := make(chan error, 1)
	stop := func() error {
		stdin.Close() // the lab exits at EOF
		select {
		case err := <-waitErr:
			return err
		case <-time.After(10 * time.Second):
			_ = c.Process.Kill()
			return <-waitErr
		}
	}
	lines := make(chan []byte, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		if sc.Scan() {
			lines <- append([]byte(nil), sc.Bytes()...)
		}
		close(lines)
		_, _ = io.Copy(io.Discard, stdout)
		waitErr <- c.Wait()
	}()
	var line []byte
	select {
	case l, ok := <-lines:
		if !ok {
			_ = stop()
			return nil, errors.New("bench: the lab process exited before announcing itself (see its error above)")
		}
		line = l
	case <-time.After(2 * time.Minute):
		_ = c.Process.Kill()
		return nil, errors.New("bench: the lab process did not start within 2 minutes")
	case <-ctx.Done():
		_ = c.Process.Kill()
		return nil, ctx.Err()
	}
	var info LabInfo
	if err := json.Unmarshal(line, &info); err != nil || info.Addr == "" {
		_ = stop()
		return nil, fmt.Errorf("bench: the lab process announced %q, not its addresses", truncate(string(line), 200))
	}
	return &labHandle{info: info, ctl: newControl(info.Control), child: true, stop: stop}, nil
}

// truncate makes text from the lab process or a host safe to quote in an
// error: printable, bounded, never split inside a character.
func truncate(s string, n int) string { return inventory.Truncate(inventory.Printable(s), n) }
