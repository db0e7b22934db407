package winhost

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/svcwatch/svcwatch/internal/inventory"
)

func TestScenarios(t *testing.T) {
	tests := []struct {
		scenario string
		// event is a pattern for the new 7045/104 event's data joined by "|" ("" = no event)
		event     string
		eventID   int
		installed string // service now in the inventory ("" none)
		gone      bool   // the event's service must not be in the inventory
		check     func(t *testing.T, before, after *Host)
	}{
		{scenario: ScenarioPsExec, eventID: 7045, event: `^PSEXESVC\|%SystemRoot%\\PSEXESVC\.exe\|user mode service\|demand start\|LocalSystem$`, installed: "PSEXESVC"},
		{scenario: ScenarioSmbExec, eventID: 7045, event: `^[A-Z]{8}\|%COMSPEC% /Q /c echo cd  \^> \\\\127\.0\.0\.1\\C\$\\__output 2\^>\^&1 > %TEMP%\\execute\.bat & .*\|user mode service\|demand start\|LocalSystem$`, gone: true},
		{scenario: ScenarioCobaltStrike, eventID: 7045, event: `^[a-z0-9]{7}\|\\\\127\.0\.0\.1\\ADMIN\$\\[a-z0-9]{7}\.exe\|`, gone: true},
		{scenario: ScenarioGetSystem, eventID: 7045, event: `^([a-z]{6})\|cmd\.exe /c echo ([a-z]{6}) > \\\\\.\\pipe\\([a-z]{6})\|`, gone: true},
		{scenario: ScenarioMimidrv, eventID: 7045, event: `^mimikatz driver \(mimidrv\)\|C:\\Users\\Public\\mimidrv\.sys\|kernel mode driver\|auto start\|$`, installed: "mimidrv",
			check: func(t *testing.T, _, h *Host) {
				if s, _ := h.Service("mimidrv"); s.Type != inventory.TypeKernelDriver {
					t.Errorf("mimidrv type %d", s.Type)
				}
			}},
		{scenario: ScenarioBinPathHijack, check: func(t *testing.T, before, h *Host) {
			s, ok := h.Service(HijackTarget())
			if !ok || s.ImagePath != HijackedImagePath || len(h.Services()) != len(before.Services()) {
				t.Errorf("hijack: %+v", s)
			}
		}},
		{scenario: ScenarioSilent, installed: SilentServiceName},
		{scenario: ScenarioLogClear, eventID: 104, event: `^adm\.jdoe\|LAB\|System\|$`, check: func(t *testing.T, before, h *Host) {
			li, prev := h.LogInfo(), before.LogInfo()
			if li.OldestRecord <= prev.NewestRecord || li.NewestRecord != li.OldestRecord || len(h.Events()) != 1 {
				t.Errorf("after clear: %+v (before %+v), %d events", li, prev, len(h.Events()))
			}
		}},
		{scenario: ScenarioBenign, eventID: 7045, event: `^Zabbix Agent 2\|"C:\\Program Files\\Zabbix Agent 2\\zabbix_agent2\.exe"`, installed: BenignServiceName},
		{scenario: ScenarioRemove, check: func(t *testing.T, before, h *Host) {
			if len(h.Services()) != len(before.Services())-1 || len(h.Events()) != len(before.Events()) {
				t.Errorf("remove: %d -> %d services", len(before.Services()), len(h.Services()))
			}
		}},
		{scenario: ScenarioHostileName, eventID: 7045, event: `^<http://evil\.example\|click> <!here>`, check: func(t *testing.T, _, h *Host) {
			s := HostileService()
			if len(s.ImagePath) < 100*1024 || utf8.ValidString(s.Name) || !strings.Contains(s.DisplayName, "\u202E") {
				t.Errorf("hostile service is not hostile enough")
			}
			out, _, exit := h.Run(collectorCommand(CollectRequest{Digest: "0", MaxEvents: 10, Lookback: 3600}.Preamble()))
			if exit != 0 || !json.Valid(out) || !utf8.Valid(out) {
				t.Fatalf("hostile answer is not valid UTF-8 JSON (exit %d)", exit)
			}
			if !strings.Contains(string(out), `\ufffd`) && !strings.Contains(string(out), "\uFFFD") {
				t.Errorf("invalid UTF-8 was not replaced")
			}
		}},
	}
	if len(tests) != len(Scenarios) {
		t.Fatalf("%d scenario cases for %d scenarios", len(tests), len(Scenarios))
	}
	for _, tt := range tests {
		t.Run(tt.scenario, func(t *testing.T) {
			before, _ := newTestHost(t, Options{Role: RoleDC})
			h, _ := newTestHost(t, Options{Role: RoleDC})
			if err := h.Apply(tt.scenario); err != nil {
				t.Fatal(err)
			}
			newEvents := h.Events()
			if tt.scenario != ScenarioLogClear {
				newEvents = newEvents[len(before.Events()):]
			}
			if tt.event == "" {
				if len(newEvents) != 0 {
					t.Errorf("unexpected events %+v", newEvents)
				}
			} else {
				if len(newEvents) != 1 || newEvents[0].ID != tt.eventID {
					t.Fatalf("new events %+v, want one %d", newEvents, tt.eventID)
				}
				e := newEvents[0]
				joined := strings.Join(e.Data, "|")
				if !regexp.MustCompile(tt.event).MatchString(joined) {
					t.Errorf("event data %.300q does not match %s", joined, tt.event)
				}
				if e.SID != h.InstallerSID() && e.SID != "S-1-5-18" {
					t.Errorf("installer SID %q", e.SID)
				}
				if e.RecordID <= before.LogInfo().NewestRecord {
					t.Errorf("record id %d not above the previous newest %d", e.RecordID, before.LogInfo().NewestRecord)
				}
				if tt.gone {
					if _, ok := h.Service(e.Field(0)); ok {
						t.Errorf("%s should be deleted again", e.Field(0))
					}
					if len(h.Services()) != len(before.Services()) {
						t.Errorf("ephemeral service left the inventory changed")
					}
				}
			}
			if tt.installed != "" {
				if _, ok := h.Service(tt.installed); !ok {
					t.Errorf("%s not installed", tt.installed)
				}
			}
			if tt.check != nil {
				tt.check(t, before, h)
			}
			if got := h.Applied(); len(got) != 1 || got[0] != tt.scenario {
				t.Errorf("Applied() = %v", got)
			}
		})
	}
	t.Run("unknown", func(t *testing.T) {
		h, _ := newTestHost(t, Options{Small: true})
		if err := h.Apply("ransomware"); err == nil {
			t.Error("unknown scenario accepted")
		}
	})
	t.Run("getsystem pipe names match", func(t *testing.T) {
		h, _ := newTestHost(t, Options{Small: true})
		h.Apply(ScenarioGetSystem)
		ev := h.Events()[len(h.Events())-1]
		m := regexp.MustCompile(`^cmd\.exe /c echo ([a-z]{6}) > \\\\\.\\pipe\\([a-z]{6})$`).FindStringSubmatch(ev.Field(1))
		if m == nil || m[1] != m[2] || m[1] != ev.Field(0) {
			t.Errorf("getsystem path %q", ev.Field(1))
		}
	})
	t.Run("cobaltstrike alternates to encoded PowerShell", func(t *testing.T) {
		h, _ := newTestHost(t, Options{Small: true})
		h.Apply(ScenarioCobaltStrike)
		h.Apply(ScenarioCobaltStrike)
		ev := h.Events()[len(h.Events())-1]
		if !strings.HasPrefix(ev.Field(1), `%COMSPEC% /b /c start /b /min powershell -nop -w hidden -encodedcommand `) {
			t.Errorf("second cobaltstrike path %q", ev.Field(1))
		}
	})
}

func TestDigestCanonicalForm(t *testing.T) {
	svcs := []inventory.Service{
		{Name: "b", DisplayName: "B", ImagePath: `C:\b.exe`, StartMode: 2, DelayedAuto: true, Account: "LocalSystem", Type: 16},
		{Name: "A", DisplayName: "Á", ServiceDLL: `x.dll`, StartMode: 3, Type: 32, State: "Running"},
		{Name: "\U0001F600", StartMode: 4, Type: 1},
		{Name: "\uFFFD", StartMode: 4, Type: 1},
	}
	// Upper-cased ordinal (UTF-16) order: A, B, U+1F600 (surrogate D83D), U+FFFD.
	canonical := "A\x1fÁ\x1f\x1fx.dll\x1f3\x1f0\x1f\x1f32" + "\x1e" +
		"b\x1fB\x1fC:\\b.exe\x1f\x1f2\x1f1\x1fLocalSystem\x1f16" + "\x1e" +
		"\U0001F600\x1f\x1f\x1f\x1f4\x1f0\x1f\x1f1" + "\x1e" +
		"\uFFFD\x1f\x1f\x1f\x1f4\x1f0\x1f\x1f1"
	sum := sha256.Sum256([]byte(canonical))
	if got, want := Digest(svcs), hex.EncodeToString(sum[:]); got != want {
		t.Errorf("Digest = %s, want %s", got, want)
	}
	// State is not part of the digest.
	svcs[1].State = "Stopped"
	if Digest(svcs) != hex.EncodeToString(sum[:]) {
		t.Error("state changed the digest")
	}
	// Invalid UTF-8 hashes as U+FFFD.
	if Digest([]inventory.Service{{Name: "\xff"}}) != Digest([]inventory.Service{{Name: "\uFFFD"}}) {
		t.Error("invalid UTF-8 not replaced before hashing")
	}
}

func TestCatalog(t *testing.T) {
	for _, role := range []Role{RoleMember, RoleDC} {
		for _, small := range []bool{false, true} {
			list := baseInventory(role, small)
			seen := map[string]bool{}
			drivers := 0
			for _, s := range list {
				key := strings.ToUpper(s.Name)
				if seen[key] {
					t.Errorf("role %d small %v: duplicate %s", role, small, s.Name)
				}
				seen[key] = true
				if s.IsDriver() {
					drivers++
					if s.Account != "" || !strings.HasSuffix(strings.ToLower(s.ImagePath), ".sys") {
						t.Errorf("driver %s: account %q path %q", s.Name, s.Account, s.ImagePath)
					}
				} else if s.Account == "" || s.ImagePath == "" {
					t.Errorf("service %s has no account or path", s.Name)
				}
			}
			if want := !small; (len(list) >= 230) != want || drivers == 0 {
				t.Errorf("role %d small %v: %d entries, %d drivers", role, small, len(list), drivers)
			}
			if role == RoleDC && (!seen["NTDS"] || !seen["KDC"]) || role == RoleMember && seen["NTDS"] {
				t.Errorf("role %d: NTDS/Kdc presence wrong", role)
			}
			if !seen[strings.ToUpper(HijackTarget())] {
				t.Errorf("role %d small %v: hijack target missing", role, small)
			}
		}
	}
}

func TestNaiveCommands(t *testing.T) {
	h, _ := newTestHost(t, Options{Role: RoleDC, Small: true})
	h.Apply(ScenarioPsExec)
	ps := func(script string) string {
		return "powershell.exe -EncodedCommand " + encodePS(progressPrefix+script)
	}
	t.Run("services", func(t *testing.T) {
		out, _, exit := h.Run(ps("Get-CimInstance Win32_Service | Select Name,DisplayName,PathName,StartMode,StartName,State | ConvertTo-Json"))
		var list []map[string]any
		if exit != 0 || json.Unmarshal(out, &list) != nil {
			t.Fatalf("exit %d: %.200s", exit, out)
		}
		drivers := 0
		for _, s := range h.Services() {
			if s.IsDriver() {
				drivers++
			}
		}
		if len(list) != len(h.Services())-drivers || list[0]["Name"] == nil {
			t.Errorf("%d services, want %d", len(list), len(h.Services())-drivers)
		}
	})
	t.Run("events", func(t *testing.T) {
		out, _, exit := h.Run(ps("Get-WinEvent -FilterHashtable @{LogName='System';Id=7045} | ConvertTo-Json"))
		var list []map[string]any
		if exit != 0 || json.Unmarshal(out, &list) != nil || len(list) != len(h.Events()) {
			t.Fatalf("exit %d, %d events: %.200s", exit, len(list), out)
		}
	})
	t.Run("cmd", func(t *testing.T) {
		if out, _, exit := h.Run("hostname"); exit != 0 || string(out) != "DC01\r\n" {
			t.Errorf("hostname: %q", out)
		}
		if out, _, exit := h.Run(`cmd.exe /c echo hi`); exit != 0 || string(out) != "hi\r\n" {
			t.Errorf("echo: %q", out)
		}
	})
	t.Run("unknown script", func(t *testing.T) {
		_, stderr, exit := h.Run(ps("Invoke-Mimikatz"))
		if exit != 1 || !strings.HasPrefix(string(stderr), "#< CLIXML") {
			t.Errorf("exit %d stderr %q", exit, stderr)
		}
	})
}

func TestLogRetention(t *testing.T) {
	h, _ := newTestHost(t, Options{Small: true})
	if err := h.SetLog(1024*1024, RetentionCircular); err != nil { // 1024 records
		t.Fatal(err)
	}
	li := h.LogInfo()
	if li.NewestRecord-li.OldestRecord+1 != 1024 {
		t.Fatalf("circular 1 MiB log holds %d records", li.NewestRecord-li.OldestRecord+1)
	}
	h.Apply(ScenarioPsExec)
	h.AddNoise(2000)
	for _, e := range h.Events() {
		if e.RecordID < h.LogInfo().OldestRecord {
			t.Errorf("event %d survived a wrap", e.RecordID)
		}
	}
	h.SetLog(1024*1024, RetentionRetain)
	newest := h.LogInfo().NewestRecord
	h.Apply(ScenarioSmbExec)
	if h.LogInfo().NewestRecord != newest {
		t.Errorf("a full retain log accepted a record")
	}
	if err := h.SetLog(1024, RetentionCircular); err == nil {
		t.Error("tiny log accepted")
	}
}
