package store

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/svcwatch/svcwatch/internal/inventory"
)

const (
	crashEnv      = "SVCWATCH_STORE_CRASH_DB"
	crashStartEnv = "SVCWATCH_STORE_CRASH_START"
)

// TestCrashChild is the process that gets killed: it commits one host state
// and two findings per step and reports each step on stdout once Commit has
// returned. It runs only when TestCrashSafety starts it.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashEnv)
	if path == "" {
		t.Skip("helper process for TestCrashSafety")
	}
	ctx := context.Background()
	s, err := Open(ctx, path)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(3)
	}
	start, err := strconv.Atoi(os.Getenv(crashStartEnv))
	if err != nil {
		fmt.Println("error", err)
		os.Exit(3)
	}
	deadline := time.Now().Add(20 * time.Second) // never outlive a parent that died
	for i := start; i <= start+100000 && time.Now().Before(deadline); i++ {
		fs := []inventory.Finding{
			finding("dc01", fmt.Sprintf("a-%d", i), inventory.SeverityHigh),
			finding("dc01", fmt.Sprintf("b-%d", i), inventory.SeverityHigh),
		}
		if err := s.Commit(ctx, state("dc01", uint64(i)), fs); err != nil {
			fmt.Println("error", err)
			os.Exit(3)
		}
		fmt.Println("committed", i)
	}
	os.Exit(0) // no Close: leave the WAL as a crash would
}

// A process killed (SIGKILL) in the middle of committing loses no commit it
// reported, and leaves no half commit: the state's watermark and the stored
// findings and outbox agree.
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a subprocess")
	}
	path := filepath.Join(t.TempDir(), "crash.db")
	const killAfter = 30
	w := 0 // watermark found after the last kill
	for round := 0; round < 3; round++ {
		want := w + killAfter
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashEnv+"="+path, crashStartEnv+"="+strconv.Itoa(w+1))
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		reported := 0
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			if n, ok := strings.CutPrefix(line, "committed "); ok {
				reported, _ = strconv.Atoi(n)
				if reported >= want {
					break
				}
			} else if strings.HasPrefix(line, "error") {
				t.Fatalf("child: %s", line)
			}
		}
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		go func() { // drain so the child never blocks on a full pipe before dying
			for sc.Scan() {
			}
		}()
		_ = cmd.Wait()
		if reported < want {
			t.Fatalf("round %d: child reported only %d commits", round, reported)
		}

		s, err := Open(context.Background(), path)
		if err != nil {
			t.Fatalf("reopen after kill: %v", err)
		}
		ctx := context.Background()
		st, err := s.State(ctx, "dc01")
		if err != nil {
			t.Fatal(err)
		}
		w = int(st.Watermark)
		if w < reported {
			t.Errorf("round %d: watermark %d, but commit %d was reported done", round, w, reported)
		}
		if n := count(t, s, "findings"); n != 2*w {
			t.Errorf("round %d: %d findings for watermark %d, want %d (a half commit?)", round, n, w, 2*w)
		}
		if d, _ := s.OutboxDepth(ctx); d != 2*w {
			t.Errorf("round %d: outbox depth %d for watermark %d, want %d", round, d, w, 2*w)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
