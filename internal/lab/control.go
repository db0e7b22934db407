package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"

	"github.com/svcwatch/svcwatch/internal/lab/ldapd"
	"github.com/svcwatch/svcwatch/internal/lab/winhost"
	"github.com/svcwatch/svcwatch/internal/lab/wsman"
)

// maxNoise bounds one noise request (a 20 MiB log holds about 20,000 records).
const maxNoise = 10_000_000

// HostStatus is one entry of GET /hosts.
type HostStatus struct {
	Name         string      `json:"name"`
	ComputerName string      `json:"computer_name"`
	Role         string      `json:"role"` // dc | member
	OS           string      `json:"os"`
	InDirectory  bool        `json:"in_directory"`
	Down         bool        `json:"down"`
	Fault        string      `json:"fault,omitempty"`
	Services     int         `json:"services"`
	Digest       string      `json:"digest"`
	LogOldest    uint64      `json:"log_oldest"`
	LogNewest    uint64      `json:"log_newest"`
	Scenarios    []string    `json:"scenarios"`
	Traffic      wsman.Stats `json:"traffic"`
	// Collects counts collector requests answered: one per poll in either
	// collector protocol (Traffic.Commands is one per shell command, so one
	// per persistent session rather than per poll).
	Collects int `json:"collects"`
}

// Status describes every host.
func (l *Lab) Status() []HostStatus {
	var out []HostStatus
	for _, h := range l.Hosts() {
		role := RoleMember
		if h.Role() == winhost.RoleDC {
			role = RoleDC
		}
		li := h.LogInfo()
		scen := h.Applied()
		if scen == nil {
			scen = []string{}
		}
		out = append(out, HostStatus{
			Name: h.Name(), ComputerName: h.ComputerName(), Role: role, OS: h.OS(),
			InDirectory: l.InDirectory(h.Name()), Down: h.Down(), Fault: h.Fault(),
			Services: len(h.Services()), Digest: h.Digest(), LogOldest: li.OldestRecord, LogNewest: li.NewestRecord,
			Scenarios: scen, Traffic: l.ws.Stats(h.Name()), Collects: h.Collects(),
		})
	}
	return out
}

// Handler is the control API (DESIGN.md "Lab control API"), for loopback
// clients only:
//
//	GET    /hosts
//	POST   /hosts/{host}/scenarios/{name}
//	POST   /hosts/{host}/down, /hosts/{host}/up
//	POST   /hosts/{host}/faults/{kind}          (kind "none" clears)
//	POST   /hosts/{host}/log/noise?count=N      N ordinary records (push old ones out of a full log)
//	POST   /hosts/{host}/log/reset              a new System.evtx: record ids restart at 1, no 104
//	POST   /hosts/{host}/log/config?max_bytes=N&retention=circular|retain|autobackup
//	POST   /directory/computers                 {"name":"dc04","role":"dc|rodc|member","os":"..."}
//	DELETE /directory/computers/{name}
//	       /slack/...                           the Slack sink's control routes
//
// Answers are JSON; errors are {"error": "..."} with 400, 403, 404 or 409
// (a scenario that cannot apply, a computer that exists).
func (l *Lab) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /hosts", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, l.Status())
	})
	mux.HandleFunc("POST /hosts/{host}/scenarios/{name}", l.withHost(func(w http.ResponseWriter, r *http.Request, h *winhost.Host) {
		name := r.PathValue("name")
		if !slices.Contains(winhost.Scenarios, name) {
			writeError(w, http.StatusNotFound, fmt.Errorf("unknown scenario %q; known: %v", name, winhost.Scenarios))
			return
		}
		if err := h.Apply(name); err != nil {
			writeError(w, http.StatusConflict, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"host": h.Name(), "scenario": name, "log_newest": h.LogInfo().NewestRecord})
	}))
	mux.HandleFunc("POST /hosts/{host}/down", l.withHost(func(w http.ResponseWriter, r *http.Request, h *winhost.Host) {
		h.SetDown(true)
		writeJSON(w, http.StatusOK, map[string]any{"host": h.Name(), "down": true})
	}))
	mux.HandleFunc("POST /hosts/{host}/up", l.withHost(func(w http.ResponseWriter, r *http.Request, h *winhost.Host) {
		h.SetDown(false)
		writeJSON(w, http.StatusOK, map[string]any{"host": h.Name(), "down": false})
	}))
	mux.HandleFunc("POST /hosts/{host}/faults/{kind}", l.withHost(func(w http.ResponseWriter, r *http.Request, h *winhost.Host) {
		if err := h.SetFault(r.PathValue("kind")); err != nil {
			writeError(w, http.StatusNotFound, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"host": h.Name(), "fault": h.Fault()})
	}))
	mux.HandleFunc("POST /hosts/{host}/log/noise", l.withHost(func(w http.ResponseWriter, r *http.Request, h *winhost.Host) {
		n, err := strconv.Atoi(r.URL.Query().Get("count"))
		if err != nil || n < 1 || n > maxNoise {
			writeError(w, http.StatusBadRequest, fmt.Errorf("count must be 1..%d", maxNoise))
			return
		}
		h.AddNoise(n)
		writeJSON(w, http.StatusOK, h.LogInfo())
	}))
	mux.HandleFunc("POST /hosts/{host}/log/reset", l.withHost(func(w http.ResponseWriter, r *http.Request, h *winhost.Host) {
		h.ResetLog()
		writeJSON(w, http.StatusOK, h.LogInfo())
	}))
	mux.HandleFunc("POST /hosts/{host}/log/config", l.withHost(func(w http.ResponseWriter, r *http.Request, h *winhost.Host) {
		q := r.URL.Query()
		size, err := strconv.ParseInt(q.Get("max_bytes"), 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, errors.New("max_bytes must be a number of bytes, e.g. 1048576"))
			return
		}
		if err := h.SetLog(size, q.Get("retention")); err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		writeJSON(w, http.StatusOK, h.LogInfo())
	}))
	mux.HandleFunc("POST /directory/computers", func(w http.ResponseWriter, r *http.Request) {
		var c Computer
		dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			writeError(w, http.StatusBadRequest, fmt.Errorf("body must be {\"name\": ..., \"role\": \"dc|rodc|member\", \"os\": ...}: %w", err))
			return
		}
		h, err := l.AddComputer(c)
		switch {
		case errors.Is(err, ldapd.ErrExists):
			writeError(w, http.StatusConflict, err)
		case err != nil:
			writeError(w, http.StatusBadRequest, err)
		default:
			writeJSON(w, http.StatusCreated, map[string]any{"name": h.Name(), "role": c.Role})
		}
	})
	mux.HandleFunc("DELETE /directory/computers/{name}", func(w http.ResponseWriter, r *http.Request) {
		err := l.RemoveComputer(r.PathValue("name"))
		switch {
		case errors.Is(err, ldapd.ErrNotFound):
			writeError(w, http.StatusNotFound, err)
		case err != nil:
			writeError(w, http.StatusBadRequest, err)
		default:
			writeJSON(w, http.StatusOK, map[string]any{"name": r.PathValue("name"), "deleted": true})
		}
	})
	mux.Handle("/slack/", l.slack.Handler())
	return loopbackOnly(mux)
}

func (l *Lab) withHost(f func(http.ResponseWriter, *http.Request, *winhost.Host)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		h, ok := l.Lookup(r.PathValue("host"))
		if !ok {
			writeError(w, http.StatusNotFound, fmt.Errorf("no host %q in the lab; GET /hosts lists them", r.PathValue("host")))
			return
		}
		f(w, r, h)
	}
}

// loopbackOnly refuses clients that are not on this machine.
func loopbackOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			writeError(w, http.StatusForbidden, errors.New("the lab control API answers loopback clients only"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, map[string]string{"error": err.Error()})
}
