package notify

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/svcwatch/svcwatch/internal/inventory"
)

var update = flag.Bool("update", false, "rewrite testdata/golden/*.json from the current rendering")

var (
	t0  = time.Date(2026, 12, 4, 14, 59, 1, 123e6, time.UTC)
	dc  = inventory.Host{Name: "dc01.corp.example", Reasons: []inventory.Reason{{Kind: inventory.ReasonDC}, {Kind: inventory.ReasonGroup, Detail: "Tier0 Servers"}}}
	srv = inventory.Host{Name: "app07.corp.example", Reasons: []inventory.Reason{{Kind: inventory.ReasonOU, Detail: "OU=Tier1,DC=corp,DC=example"}}}
	adm = &inventory.Account{SID: "S-1-5-21-1-2-3-1104", Name: `CORP\adm-jdoe`, Privileged: true, Groups: []string{"Domain Admins", "Administrators"}}
)

func psexecEvent() *inventory.Event {
	return &inventory.Event{ID: 7045, RecordID: 5230, Time: t0, SID: adm.SID,
		Data: []string{"PSEXESVC", `%SystemRoot%\PSEXESVC.exe`, "user mode service", "demand start", "LocalSystem"}}
}

// kindFixtures is one realistic finding of each kind.
func kindFixtures() map[inventory.Kind]inventory.Finding {
	psexec := &inventory.Service{Name: "PSEXESVC", DisplayName: "PSEXESVC", ImagePath: `%SystemRoot%\PSEXESVC.exe`,
		StartMode: inventory.StartDemand, Account: "LocalSystem", Type: inventory.TypeOwnProcess, State: "Running"}
	hit := []inventory.Hit{{ID: "psexec", Severity: inventory.SeverityCritical, Why: "PSEXESVC is the service PsExec installs to run commands remotely.", Follows: "Sigma: PsExec Service Installation"}}
	return map[inventory.Kind]inventory.Finding{
		inventory.KindInstalled: {ID: "f-installed", Host: dc, Kind: inventory.KindInstalled, Severity: inventory.SeverityCritical, At: t0,
			Service: psexec, Event: psexecEvent(), Installer: adm, Hits: hit},
		inventory.KindEphemeral: {ID: "f-ephemeral", Host: dc, Kind: inventory.KindEphemeral, Severity: inventory.SeverityCritical, At: t0,
			Event: psexecEvent(), Installer: adm, Hits: hit, Detail: "Installed at record 5230 and gone 41 s later."},
		inventory.KindSilent: {ID: "f-silent", Host: srv, Kind: inventory.KindSilent, Severity: inventory.SeverityHigh, At: t0,
			Service: &inventory.Service{Name: "WinSysHelper", DisplayName: "Windows System Helper", ImagePath: `C:\ProgramData\WinSys\helper.exe`,
				StartMode: inventory.StartAuto, DelayedAuto: true, Account: "LocalSystem", Type: inventory.TypeOwnProcess},
			Hits: []inventory.Hit{{ID: "path-programdata", Severity: inventory.SeverityMedium, Why: `Image runs from C:\ProgramData, where any user can write.`}}},
		inventory.KindModified: {ID: "f-modified", Host: dc, Kind: inventory.KindModified, Severity: inventory.SeverityHigh, At: t0,
			Previous: &inventory.Service{Name: "IKEEXT", DisplayName: "IKE and AuthIP IPsec Keying Modules", ImagePath: `%SystemRoot%\system32\svchost.exe -k netsvcs -p`,
				ServiceDLL: `%SystemRoot%\System32\ikeext.dll`, StartMode: inventory.StartDemand, Account: "LocalSystem", Type: inventory.TypeShareProcess},
			Service: &inventory.Service{Name: "IKEEXT", DisplayName: "IKE and AuthIP IPsec Keying Modules", ImagePath: `%SystemRoot%\system32\svchost.exe -k netsvcs -p`,
				ServiceDLL: `C:\Windows\Temp\wlbsctrl.dll`, StartMode: inventory.StartAuto, Account: "LocalSystem", Type: inventory.TypeShareProcess},
			Detail: "ServiceDll and start mode changed.",
			Hits:   []inventory.Hit{{ID: "dll-temp", Severity: inventory.SeverityHigh, Why: "ServiceDll now loads from a Temp directory."}}},
		inventory.KindRemoved: {ID: "f-removed", Host: srv, Kind: inventory.KindRemoved, Severity: inventory.SeverityLow, At: t0,
			Previous: &inventory.Service{Name: "AdobeARMservice", DisplayName: "Adobe Acrobat Update Service",
				ImagePath: `"C:\Program Files (x86)\Common Files\Adobe\ARM\1.0\armsvc.exe"`, StartMode: inventory.StartAuto, Account: "LocalSystem", Type: inventory.TypeOwnProcess}},
		inventory.KindTamper: {ID: "f-tamper", Host: dc, Kind: inventory.KindTamper, Severity: inventory.SeverityCritical, At: t0,
			Event:  &inventory.Event{ID: 104, RecordID: 1, Time: t0, SID: adm.SID, Data: []string{"adm-jdoe", "CORP", "System", ""}},
			Detail: "The System log was cleared (event 104).", Installer: adm},
		inventory.KindUnreachable: {ID: "f-unreachable", Host: dc, Kind: inventory.KindUnreachable, Severity: inventory.SeverityHigh, At: t0,
			Detail: "3 polls failed in a row; last: dc01.corp.example: connect: dial tcp 10.0.0.10:5986: i/o timeout"},
		inventory.KindRecovered: {ID: "f-recovered", Host: dc, Kind: inventory.KindRecovered, Severity: inventory.SeverityInfo, At: t0,
			Detail: "Answered again after 47 minutes."},
		inventory.KindScope: {ID: "f-scope", Host: inventory.Host{Name: "dc04.corp.example", Reasons: []inventory.Reason{{Kind: inventory.ReasonDC}}},
			Kind: inventory.KindScope, Severity: inventory.SeverityMedium, At: t0, Detail: "dc04.corp.example entered the monitored set: new writable domain controller."},
	}
}

func burst(n int) []inventory.Finding {
	fs := make([]inventory.Finding, n)
	for i := range fs {
		sev := inventory.SeverityMedium
		if i == n-1 {
			sev = inventory.SeverityCritical
		}
		fs[i] = inventory.Finding{
			ID: fmt.Sprintf("f-burst-%02d", i), Host: dc, Kind: inventory.KindInstalled, Severity: sev, At: t0.Add(time.Duration(i) * time.Second),
			Service: &inventory.Service{Name: fmt.Sprintf("Svc%02d", i), ImagePath: fmt.Sprintf(`C:\Windows\Temp\tool%02d.exe`, i), StartMode: inventory.StartDemand, Account: "LocalSystem", Type: inventory.TypeOwnProcess},
			Event:   &inventory.Event{ID: 7045, RecordID: uint64(6000 + i), Time: t0},
		}
	}
	return fs
}

func golden(t *testing.T, name string, m Message) {
	t.Helper()
	got := append(m.JSON(), '\n')
	path := filepath.Join("testdata", "golden", name+".json")
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/notify -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file; if the change is intended, run go test ./internal/notify -update\ngot:\n%s", path, got)
	}
}

func TestRenderGolden(t *testing.T) {
	for kind, f := range kindFixtures() {
		t.Run(string(kind), func(t *testing.T) {
			m := Render(f)
			golden(t, string(kind), m)
			checkLimits(t, m)
		})
	}
	t.Run("digest", func(t *testing.T) {
		m := RenderDigest(burst(50))
		golden(t, "digest", m)
		checkLimits(t, m)
	})
}

func TestRenderMentionsWhatMatters(t *testing.T) {
	m := Render(kindFixtures()[inventory.KindInstalled])
	all := string(m.JSON())
	for _, want := range []string{
		"CRITICAL · Service installed: PSEXESVC", "Host: dc01.corp.example", "Monitored as: dc, group Tier0 Servers",
		`%SystemRoot%\\PSEXESVC.exe`, "Account: LocalSystem", "Start mode: demand",
		`Installed by: CORP\\adm-jdoe, PRIVILEGED (Domain Admins, Administrators)`, "Event time: 2026-12-04 14:59:01 UTC",
		"Record id: 5230 (event 7045)", "PsExec installs", "*Next:*",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("rendered message lacks %q", want)
		}
	}
	if !strings.HasPrefix(m.Text, "🟥 CRITICAL · Service installed: PSEXESVC on dc01.corp.example") {
		t.Errorf("fallback text = %q", m.Text)
	}
}

func TestRenderDigestBounded(t *testing.T) {
	for _, n := range []int{1, 11, 50, 5000} {
		m := RenderDigest(burst(n))
		checkLimits(t, m)
		js := string(m.JSON())
		if !strings.Contains(js, fmt.Sprintf("%d findings", n)) {
			t.Errorf("digest of %d does not say how many", n)
		}
		// The critical one is listed first, whatever the count.
		if !strings.Contains(js, fmt.Sprintf("• CRITICAL installed Svc%02d", n-1)) {
			t.Errorf("digest of %d does not list the critical finding first:\n%s", n, js)
		}
		if n == 5000 && !strings.Contains(js, "more not shown here") {
			t.Errorf("digest of 5000 has no marker for the findings left out")
		}
	}
}

// checkLimits re-checks Slack's limits on the JSON a message marshals to
// (the sink checks them again over HTTP in the delivery tests).
func checkLimits(t *testing.T, m Message) {
	t.Helper()
	var wire struct {
		Text   string `json:"text"`
		Blocks []struct {
			Type     string      `json:"type"`
			Text     *textObj    `json:"text"`
			Fields   []textObj   `json:"fields"`
			Elements []textObj   `json:"elements"`
			Extra    interface{} `json:"accessory"`
		} `json:"blocks"`
	}
	if err := json.Unmarshal(m.JSON(), &wire); err != nil {
		t.Fatal(err)
	}
	if len(wire.Blocks) > maxBlocks {
		t.Errorf("%d blocks", len(wire.Blocks))
	}
	if n := slackLen(wire.Text); n == 0 || n > maxFallback {
		t.Errorf("fallback text length %d", n)
	}
	for i, b := range wire.Blocks {
		if b.Text != nil {
			limit := maxText
			if b.Type == "header" {
				limit = maxHeader
			}
			b.Text.check(t, fmt.Sprintf("block %d text", i), limit)
		}
		if len(b.Fields) > maxFields {
			t.Errorf("block %d: %d fields", i, len(b.Fields))
		}
		for j, f := range b.Fields {
			f.check(t, fmt.Sprintf("block %d field %d", i, j), maxField)
		}
		for j, e := range b.Elements {
			e.check(t, fmt.Sprintf("block %d element %d", i, j), maxText)
		}
	}
}

type textObj struct {
	Type     string `json:"type"`
	Text     string `json:"text"`
	Verbatim bool   `json:"verbatim"`
}

func (o textObj) check(t *testing.T, where string, limit int) {
	t.Helper()
	if n := slackLen(o.Text); n == 0 || n > limit {
		t.Errorf("%s: length %d, limit %d", where, n, limit)
	}
	if o.Type == "mrkdwn" && !o.Verbatim {
		t.Errorf("%s: mrkdwn without verbatim", where)
	}
	if strings.ContainsAny(o.Text, "<>") {
		t.Errorf("%s: raw angle bracket in %q", where, o.Text)
	}
}

// FuzzRender: whatever a host sends, rendering never panics, keeps every
// Slack limit and leaves no raw angle bracket in any text.
func FuzzRender(f *testing.F) {
	f.Add("PSEXESVC", `%SystemRoot%\PSEXESVC.exe`, "dc01.corp.example", "why", uint8(0))
	f.Add("<@U123>*b*", strings.Repeat("`<&>", 3000), "<!channel>\x00\xff", strings.Repeat("é", 5000), uint8(3))
	f.Add("", "", "", "", uint8(8))
	f.Add(strings.Repeat("🟥", 200), "\u202e", "h", "", uint8(4))
	kinds := []inventory.Kind{inventory.KindInstalled, inventory.KindEphemeral, inventory.KindSilent, inventory.KindModified,
		inventory.KindRemoved, inventory.KindTamper, inventory.KindUnreachable, inventory.KindRecovered, inventory.KindScope, "new-kind"}
	f.Fuzz(func(t *testing.T, name, path, host, text string, k uint8) {
		svc := &inventory.Service{Name: name, DisplayName: text, ImagePath: path, ServiceDLL: text, Account: text, Type: uint32(k)}
		prev := &inventory.Service{Name: name, ImagePath: text, ServiceDLL: path, Account: name}
		fd := inventory.Finding{
			ID: text, Host: inventory.Host{Name: host, Reasons: []inventory.Reason{{Kind: inventory.ReasonGroup, Detail: text}}},
			Kind: kinds[int(k)%len(kinds)], Severity: inventory.Severity(k % 6), At: t0,
			Service: svc, Previous: prev, Detail: text,
			Event:     &inventory.Event{ID: 7045, RecordID: uint64(k), Time: t0, Data: []string{name, path, text, text, text}},
			Installer: &inventory.Account{Name: text, SID: name, Privileged: k%2 == 0, Groups: []string{text, name}},
			Hits:      []inventory.Hit{{ID: name, Why: text, Follows: path}, {ID: text, Why: path}},
		}
		checkLimits(t, Render(fd))
		checkLimits(t, RenderDigest([]inventory.Finding{fd, fd, fd}))
	})
}
