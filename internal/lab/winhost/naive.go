package winhost

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/svcwatch/svcwatch/internal/inventory"
)

// naiveService is a Win32_Service / Get-Service object as ConvertTo-Json
// renders the properties scripts usually select.
type naiveService struct {
	Name        string `json:"Name"`
	DisplayName string `json:"DisplayName"`
	PathName    string `json:"PathName"`
	ServiceType string `json:"ServiceType"`
	StartMode   string `json:"StartMode"`
	StartName   string `json:"StartName"`
	State       string `json:"State"`
}

// naiveEvent is a Get-WinEvent record as ConvertTo-Json renders the usual selection.
type naiveEvent struct {
	Id           int      `json:"Id"`
	RecordId     uint64   `json:"RecordId"`
	ProviderName string   `json:"ProviderName"`
	LogName      string   `json:"LogName"`
	MachineName  string   `json:"MachineName"`
	TimeCreated  string   `json:"TimeCreated"`
	UserId       string   `json:"UserId"`
	Properties   []string `json:"Properties"`
}

// naive answers the scripts a straightforward poller runs; see Exec.
func (h *Host) naive(ctx context.Context, script, fault string, stdout, stderr io.Writer) (int, error) {
	low := strings.ToLower(script)
	wantEvents := strings.Contains(low, "get-winevent") || strings.Contains(low, "get-eventlog")
	wantDrivers := strings.Contains(low, "win32_systemdriver")
	wantServices := strings.Contains(low, "get-service") || strings.Contains(low, "win32_service")
	if !wantEvents && !wantDrivers && !wantServices {
		if strings.TrimSpace(low) == "hostname" || strings.Contains(low, "$env:computername") {
			io.WriteString(stdout, h.netbio+"\r\n")
			return 0, nil
		}
		word, _ := splitArg(strings.TrimSpace(script))
		writeCLIXMLError(stderr, fmt.Sprintf("%s : The term '%s' is not recognized as the name of a cmdlet, function, script file, or operable program. Check the spelling of the name, or if a path was included, verify that the path is correct and try again.", word, word))
		return 1, nil
	}
	switch fault {
	case FaultGarbage:
		io.WriteString(stdout, "Get-WinEvent : The RPC server is unavailable\r\n")
		return 0, nil
	case FaultHuge:
		return h.writeHuge(ctx, stdout)
	}

	h.mu.Lock()
	var services []naiveService
	for _, s := range h.services {
		if s.IsDriver() == wantDrivers || (wantDrivers && wantServices) {
			services = append(services, naiveService{
				Name: Sanitize(s.Name), DisplayName: Sanitize(s.DisplayName), PathName: Sanitize(s.ImagePath),
				ServiceType: naiveType(s.Type), StartMode: naiveStart(s.StartMode), StartName: Sanitize(s.Account), State: s.State,
			})
		}
	}
	events := make([]naiveEvent, 0, len(h.log.events))
	for _, e := range h.log.events {
		ej := toEventJSON(e)
		events = append(events, naiveEvent{
			Id: e.ID, RecordId: e.RecordID, ProviderName: providerOf(e.ID), LogName: "System", MachineName: h.name,
			TimeCreated: ej.Time, UserId: e.SID, Properties: ej.Data,
		})
	}
	h.mu.Unlock()

	var v any
	switch {
	case wantEvents && (wantServices || wantDrivers):
		v = map[string]any{"services": services, "events": events}
	case wantEvents:
		v = events
	default:
		v = services
	}
	out, err := json.MarshalIndent(v, "", "    ")
	if err != nil {
		return 1, err
	}
	if fault == FaultTruncated {
		out = out[:len(out)/2]
	}
	if _, err := stdout.Write(append(out, '\r', '\n')); err != nil {
		return 1, err
	}
	return 0, nil
}

func providerOf(id int) string {
	if id == inventory.EventLogCleared {
		return "Microsoft-Windows-Eventlog"
	}
	return "Service Control Manager"
}

func naiveType(t uint32) string {
	switch {
	case t&inventory.TypeKernelDriver != 0:
		return "Kernel Driver"
	case t&inventory.TypeFileSystemDriver != 0:
		return "File System Driver"
	case t&inventory.TypeShareProcess != 0:
		return "Share Process"
	}
	return "Own Process"
}

func naiveStart(m inventory.StartMode) string {
	switch m {
	case inventory.StartBoot:
		return "Boot"
	case inventory.StartSystem:
		return "System"
	case inventory.StartAuto:
		return "Auto"
	case inventory.StartDemand:
		return "Manual"
	case inventory.StartDisabled:
		return "Disabled"
	}
	return "Unknown"
}
