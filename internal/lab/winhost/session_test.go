package winhost

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"
)

const sessionLine = `powershell.exe -NoLogo -NoProfile -NonInteractive -ExecutionPolicy Bypass -Command "` + SessionBootstrap + `"`

// TestSessionFaultsBetweenRequests: one collector process answers request
// after request; a fault set between two requests applies to the next one.
func TestSessionFaultsBetweenRequests(t *testing.T) {
	h := New("dc01.lab.example", Options{Role: RoleDC, Small: true, SlowDelay: time.Hour})
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	var stderr bytes.Buffer
	type result struct {
		exit int
		err  error
	}
	done := make(chan result, 1)
	go func() {
		exit, err := h.ExecInput(context.Background(), sessionLine, inR, outW, &stderr)
		outW.Close()
		done <- result{exit, err}
	}()
	out := bufio.NewReader(outR)
	write := func(s string) {
		t.Helper()
		if _, err := io.WriteString(inW, s); err != nil {
			t.Fatal(err)
		}
	}
	write(base64.StdEncoding.EncodeToString([]byte(CollectorMarkerV2+"\n...\n")) + "\n")
	req := CollectRequest{Digest: "0", MaxEvents: 10, Lookback: 3600}

	write(req.RequestLine() + "\n")
	line, err := out.ReadString('\n')
	if err != nil || !json.Valid([]byte(line)) {
		t.Fatalf("first answer %q: %v", line, err)
	}
	if err := h.SetFault(FaultGarbage); err != nil {
		t.Fatal(err)
	}
	write(req.RequestLine() + "\n")
	line, _ = out.ReadString('\n')
	if json.Valid([]byte(line)) || !strings.Contains(line, "RPC server") {
		t.Fatalf("garbage fault answered %q", line)
	}
	_, _ = out.ReadString('\n') // the rest of the garbage
	if err := h.SetFault(FaultTruncated); err != nil {
		t.Fatal(err)
	}
	write(req.RequestLine() + "\n")
	rest, _ := io.ReadAll(out)
	if strings.Contains(string(rest), "\n") || len(rest) == 0 {
		t.Fatalf("truncated fault wrote %q", rest)
	}
	r := <-done
	if r.err != nil || r.exit != 0 {
		t.Fatalf("truncated: exit %d err %v, want the process gone with 0", r.exit, r.err)
	}
	if h.Runs() != 4 || h.Collects() != 3 { // the bootstrap and three requests
		t.Errorf("Runs() = %d, Collects() = %d; want 4 and 3", h.Runs(), h.Collects())
	}
}

func TestParseRequestLine(t *testing.T) {
	good := []string{"0 0 1 0", "9223372036854775807 " + strings.Repeat("0f", 32) + " 10000 31536000"}
	bad := []string{"", "0 0 1", "0 0 0 0", "0 0 10001 0", "0 0 1 31536001", "9223372036854775808 0 1 0", "-1 0 1 0",
		"0 1 1 0", " 0 0 1 0", "0 0 1 0 ", "0  0 1 0", "٠ 0 1 0", "0 0 1 0\n"}
	for _, s := range good {
		if _, err := ParseRequestLine(s); err != nil {
			t.Errorf("%q: %v", s, err)
		}
	}
	for _, s := range bad {
		if _, err := ParseRequestLine(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}
