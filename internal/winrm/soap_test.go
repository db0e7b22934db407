package winrm

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseRealResponses(t *testing.T) {
	tests := []struct {
		file      string
		shellID   string
		commandID string
		stdout    string
		done      bool
		exit      int
	}{
		{file: "create-response.pypsrp-winrs_standard.xml", shellID: "4283CBDC-3706-415B-88BD-B385F3E51A53"},
		{file: "create-response.winrb-open_shell_v2.xml", shellID: "62DE33F0-8674-43D9-B6A5-3298012CC4CD"},
		{file: "create-response.masterzen-fixture.xml", shellID: "67A74734-DD32-4F10-89DE-49A060483810"},
		{file: "command-response.pypsrp-winrs_standard.xml", commandID: "CF84C20A-0A35-43FA-AF78-0B4711DA5F30"},
		{file: "receive-response-done-exitcode0.pypsrp-winrs_standard.xml", stdout: "hi\r\n", done: true},
		{file: "receive-response-running.pypsrp-winrs_operation_timeout.xml", stdout: "hi\n"},
		{file: "receive-response-done-unicode.pypsrp-winrs_unicode.xml", stdout: "こんにちは\n", done: true},
		{file: "receive-response-done-exitcode123.masterzen-fixture.xml", done: true, exit: 123},
		{file: "delete-response.pypsrp-winrs_standard.xml"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			env, err := parseEnvelope(readShared(t, filepath.Join("wire", "wsman", tt.file)))
			if err != nil {
				t.Fatal(err)
			}
			if env.Fault != nil {
				t.Fatalf("unexpected fault %v", env.Fault)
			}
			if tt.shellID != "" && !strings.EqualFold(env.ShellID, tt.shellID) {
				t.Errorf("shell id %q, want %q", env.ShellID, tt.shellID)
			}
			if env.CommandID != tt.commandID {
				t.Errorf("command id %q, want %q", env.CommandID, tt.commandID)
			}
			var out strings.Builder
			for _, s := range env.Streams {
				if s.Name == "stdout" {
					out.Write(s.Data)
				}
			}
			if out.String() != tt.stdout {
				t.Errorf("stdout %q, want %q", out.String(), tt.stdout)
			}
			if env.Done != tt.done || env.ExitCode != tt.exit {
				t.Errorf("done %t exit %d, want %t %d", env.Done, env.ExitCode, tt.done, tt.exit)
			}
		})
	}
}

// accessDeniedFault is built from the fields quoted in
// wire/wsman/NOTES-access-denied.txt (no full real body is public).
const accessDeniedFault = `<s:Envelope xml:lang="en-US" xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"><s:Header><a:Action>http://schemas.dmtf.org/wbem/wsman/1/wsman/fault</a:Action></s:Header><s:Body><s:Fault><s:Code><s:Value>s:Receiver</s:Value><s:Subcode><s:Value>w:InternalError</s:Value></s:Subcode></s:Code><s:Reason><s:Text xml:lang="en-US">Access is denied. </s:Text></s:Reason><s:Detail><f:WSManFault xmlns:f="http://schemas.microsoft.com/wbem/wsman/1/wsmanfault" Code="2147942405" Machine="dc01"><f:Message>Access is denied. </f:Message></f:WSManFault></s:Detail></s:Fault></s:Body></s:Envelope>`

func TestFaultsFromRealFiles(t *testing.T) {
	tests := []struct {
		file    string
		code    uint64
		subcode string
		want    error
	}{
		{"fault-quotalimit-2150859173-max-shells.winrb-wmi_error_v2.xml", codeMaxShells, "QuotaLimit", ErrQuota},
		{"fault-internalerror-wmierror-2150859174-max-operations.pywinrm-test_exceptions.xml", codeMaxOperations, "InternalError", ErrQuota},
		{"fault-timedout-2150858793.pypsrp-winrs_operation_timeout.xml", codeTimedOut, "TimedOut", errOperationTimeout},
		{"fault-timedout-2150858793.masterzen-fixture.xml", codeTimedOut, "TimedOut", errOperationTimeout},
		{"fault-timedout-2150858793.pywinrm-test_exceptions.xml", codeTimedOut, "TimedOut", errOperationTimeout},
		{"fault-invalidselectors-2150858843-shell-not-found.pypsrp-psrp_is_alive_invalid_selectors.xml", codeInvalidSelectors, "InvalidSelectors", ErrShellNotFound},
		{"fault-invalidselectors-2150858843-unknown-command.pypsrp-winrs_bad_cmd_id.xml", codeInvalidSelectors, "InvalidSelectors", ErrShellNotFound},
		{"fault-invalidselectors-2150858843-receive.pypsrp-psrp_receive_failure.xml", codeInvalidSelectors, "InvalidSelectors", ErrShellNotFound},
		{"fault-internalerror-2147942606-filename-too-long.masterzen-fixture.xml", codeFilenameTooLong, "InternalError", ErrCommandTooLong},
		{"fault-internalerror-2147942402-file-not-found.pypsrp-winrs_no_cmd_shell.xml", 2147942402, "InternalError", ErrFault},
		{"fault-invalidparameter-87.pypsrp-winrs_fail_poll_process.xml", 87, "InvalidParameter", ErrFault},
		{"fault-schemavalidation-2150858817.pywinrm-test_exceptions.xml", 2150858817, "SchemaValidationError", ErrFault},
		{"fault-cannotprocessfilter-2150858778.winrb-soap_fault_v2.xml", 2150858778, "CannotProcessFilter", ErrFault},
		{"fault-mustunderstand.pywinrm-test_exceptions.xml", 0, "", ErrFault},
		{"fault-unknown-no-reason.pywinrm-test_exceptions.xml", 0, "", ErrFault},
		{"fault-internalerror.winrb-soap_fault_omi.xml", 0, "InternalError", ErrFault},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			env, err := parseEnvelope(readShared(t, filepath.Join("wire", "wsman", tt.file)))
			if err != nil {
				t.Fatal(err)
			}
			if env.Fault == nil {
				t.Fatal("no fault parsed")
			}
			if env.Fault.Code != tt.code || env.Fault.Subcode != tt.subcode {
				t.Errorf("code %d subcode %q, want %d %q", env.Fault.Code, env.Fault.Subcode, tt.code, tt.subcode)
			}
			err = classifyFault(env.Fault)
			if !errors.Is(err, tt.want) {
				t.Errorf("classified as %v, want %v", err, tt.want)
			}
			var f *Fault
			if !errors.As(err, &f) || f.Code != tt.code {
				t.Errorf("the *Fault is not in the chain: %v", err)
			}
		})
	}
	t.Run("access denied (NOTES-access-denied.txt)", func(t *testing.T) {
		notes := string(readShared(t, "wire/wsman/NOTES-access-denied.txt"))
		if !strings.Contains(notes, "2147942405") {
			t.Fatal("notes no longer name code 2147942405")
		}
		env, err := parseEnvelope([]byte(accessDeniedFault))
		if err != nil {
			t.Fatal(err)
		}
		err = classifyFault(env.Fault)
		if !errors.Is(err, ErrAccessDenied) {
			t.Fatalf("got %v", err)
		}
		for _, group := range []string{"Remote Management Users", "Event Log Readers"} {
			if !strings.Contains(err.Error(), group) {
				t.Errorf("message does not name %q: %v", group, err)
			}
		}
	})
	t.Run("quota message says back off", func(t *testing.T) {
		env, _ := parseEnvelope(readShared(t, "wire/wsman/fault-quotalimit-2150859173-max-shells.winrb-wmi_error_v2.xml"))
		if err := classifyFault(env.Fault); !strings.Contains(err.Error(), "back off") || !strings.Contains(err.Error(), "30 concurrent shells") {
			t.Errorf("message: %v", err)
		}
	})
}

func TestParseEnvelopeRejects(t *testing.T) {
	tests := map[string]string{
		"empty":              "",
		"not xml":            "hello",
		"soap 1.1":           `<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body/></s:Envelope>`,
		"truncated":          `<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body>`,
		"bad base64":         `<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><rsp:Stream xmlns:rsp="x" Name="stdout">!!!</rsp:Stream></s:Body></s:Envelope>`,
		"bad exit code":      `<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><ExitCode>x</ExitCode></s:Body></s:Envelope>`,
		"deep":               `<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope">` + strings.Repeat("<a>", 100) + strings.Repeat("</a>", 100) + `</s:Envelope>`,
		"hostile shell id":   `<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><rsp:Shell xmlns:rsp="x"><rsp:ShellId>]]&gt;&lt;evil/&gt;</rsp:ShellId></rsp:Shell></s:Body></s:Envelope>`,
		"hostile command id": `<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><rsp:CommandResponse xmlns:rsp="x"><rsp:CommandId>a b</rsp:CommandId></rsp:CommandResponse></s:Body></s:Envelope>`,
		"two roots tail":     `<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"></s:Envelope><x>`,
	}
	for name, body := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := parseEnvelope([]byte(body)); !errors.Is(err, ErrProtocol) {
				t.Fatalf("got %v, want ErrProtocol", err)
			}
		})
	}
}

func FuzzParseEnvelope(f *testing.F) {
	dir := filepath.Join(sharedDir(f), "wire", "wsman")
	files, _ := filepath.Glob(filepath.Join(dir, "*.xml"))
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(accessDeniedFault))
	f.Fuzz(func(t *testing.T, data []byte) {
		env, err := parseEnvelope(data)
		if err != nil {
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("error does not wrap ErrProtocol: %v", err)
			}
			return
		}
		if env.Fault != nil {
			_ = classifyFault(env.Fault).Error()
		}
	})
}

func TestShellIDOnlyFromShellIdSelector(t *testing.T) {
	body := `<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"><s:Body><w:SelectorSet><w:Selector Name="Other">not-the-shell</w:Selector><w:Selector Name="ShellId">ABC-123</w:Selector></w:SelectorSet></s:Body></s:Envelope>`
	env, err := parseEnvelope([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if env.ShellID != "ABC-123" {
		t.Fatalf("shell id %q", env.ShellID)
	}
}
