package winhost

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// FuzzExec feeds arbitrary command lines to a host: it must answer (exit
// code and output), never panic, and reject every malformed collector request.
func FuzzExec(f *testing.F) {
	good := CollectRequest{Watermark: 5, Digest: "0", MaxEvents: 10, Lookback: 60}.Preamble()
	for _, seed := range []string{
		collectorCommand(good),
		"powershell.exe -EncodedCommand " + encodePS(good+"\n"+CollectorMarker+"\n"),
		"powershell.exe -EncodedCommand " + encodePS("$W=1;$D='0';$N=1;$B=0;$x\n"+CollectorMarker),
		"powershell -enc",
		"powershell -e AAAA",
		"cmd /c cmd /c hostname",
		`"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe" -c Get-Service`,
		"echo <!channel>",
		"",
		"\x00\xff",
	} {
		f.Add(seed)
	}
	h := New("dc01.lab.example", Options{Small: true, Now: func() time.Time { return time.Date(2026, 12, 4, 15, 0, 0, 0, time.UTC) }})
	f.Fuzz(func(t *testing.T, cmd string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var out, errOut bytes.Buffer
		exit, err := h.Exec(ctx, cmd, &out, &errOut)
		if err != nil {
			t.Fatalf("Exec(%q): %v", cmd, err)
		}
		if exit == 0 && strings.Contains(errOut.String(), "CLIXML") {
			t.Fatalf("error output with exit 0 for %q", cmd)
		}
	})
}
