package wsman

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
)

// WSManFault codes the server sends (Windows HRESULTs, decimal as on the wire).
const (
	CodeTimedOut            = 2150858793 // 0x80338029 OperationTimeout expired with no output
	CodeInvalidSelectors    = 2150858843 // 0x8033805B unknown shell or command
	CodeQuotaMaxShells      = 2150859173 // 0x803381A5 MaxShellsPerUser exceeded
	CodeQuotaMaxOperations  = 2150859174 // 0x803381A6 MaxConcurrentOperationsPerUser exceeded
	CodeAccessDenied        = 2147942405 // 0x80070005 E_ACCESSDENIED
	CodeFilenameTooLong     = 2147942606 // 0x800700CE the command line exceeds CreateProcess' limit
	CodeInvalidHeader       = 2150858767 // 0x8033800F invalid SOAP header (timeout)
	CodeActionNotSupported  = 2150858771 // 0x80338013
	CodeSchemaValidation    = 2150858817 // 0x80338041 malformed request
	maxCreateProcessCmdLine = 32767
)

// Fault is a SOAP fault as Windows' WinRM service writes it.
type Fault struct {
	Status     int    // HTTP status, 500 for every WS-Management fault
	Addressing bool   // a WS-Addressing fault (different Action URI)
	Code       string // s:Sender | s:Receiver
	Subcode    string // e.g. w:TimedOut
	Reason     string
	ReasonLang string // xml:lang of the reason ("en-US"; the filename-too-long fault has "")
	Detail     string // optional w:FaultDetail URI
	WSManCode  uint32
	Message    string
	Provider   string // optional ProviderFault provider (with ProviderPath)
	ProvPath   string
	Nested     bool // the provider fault wraps another WSManFault (shell not found)
	WMIError   bool // MSFT_WmiError detail instead of WSManFault (QuotaLimit)
}

func (f Fault) Error() string {
	return fmt.Sprintf("wsman fault %s %d: %s", f.Subcode, f.WSManCode, f.Reason)
}

// The faults the server produces; texts as Windows words them (note the trailing spaces).
var (
	faultTimedOut = Fault{Code: "s:Receiver", Subcode: "w:TimedOut", WSManCode: CodeTimedOut,
		Reason:  "The WS-Management service cannot complete the operation within the time specified in OperationTimeout.  ",
		Message: "The WS-Management service cannot complete the operation within the time specified in OperationTimeout.  "}
	faultUnknownCommand = Fault{Code: "s:Sender", Subcode: "w:InvalidSelectors", WSManCode: CodeInvalidSelectors,
		Reason:  "The WS-Management service cannot process the request because the request contained invalid selectors for the resource. ",
		Detail:  "http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/UnexpectedSelectors",
		Message: "The Windows Remote Shell received a request to perform an operation on a command identifier that does not exist. Either the command has completed execution or the client specified an invalid command identifier. "}
	faultUnknownShell = Fault{Code: "s:Sender", Subcode: "w:InvalidSelectors", WSManCode: CodeInvalidSelectors,
		Reason:   "The WS-Management service cannot process the request because the request contained invalid selectors for the resource. ",
		Detail:   "http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/UnexpectedSelectors",
		Message:  "The WS-Management service cannot process the request because the request contained invalid selectors for the resource. ",
		Provider: "Shell provider", ProvPath: `%systemroot%\system32\WsmSvc.dll`, Nested: true}
	faultQuota = Fault{Code: "s:Sender", Subcode: "w:QuotaLimit", WSManCode: CodeQuotaMaxShells, WMIError: true,
		Reason:  "The WS-Management service cannot process the request. The maximum number of concurrent shells for this user has been exceeded. Close existing shells or raise the quota for this user. ",
		Message: "The WS-Management service cannot process the request. This user is allowed a maximum number of %d concurrent shells, which has been exceeded. Close existing shells or raise the quota for this user. "}
	faultMaxOperations = Fault{Code: "s:Receiver", Subcode: "w:InternalError", WSManCode: CodeQuotaMaxOperations, WMIError: true,
		Reason:  "The WS-Management service cannot process the request. This user is allowed a maximum number of %d concurrent operations, which has been exceeded. Close existing operations for this user, or raise the quota for this user. ",
		Message: "The WS-Management service cannot process the request. This user is allowed a maximum number of %d concurrent operations, which has been exceeded. Close existing operations for this user, or raise the quota for this user. "}
	faultAccessDenied = Fault{Code: "s:Receiver", Subcode: "w:InternalError", WSManCode: CodeAccessDenied,
		Reason: "Access is denied. ", Message: "Access is denied. "}
	faultTooLong = Fault{Code: "s:Receiver", Subcode: "w:InternalError", WSManCode: CodeFilenameTooLong, ReasonLang: "-",
		Reason: "The filename or extension is too long. ", Message: "The filename or extension is too long. ",
		Provider: "Shell cmd plugin", ProvPath: `%systemroot%\system32\winrscmd.dll`}
	faultActionNotSupported = Fault{Code: "s:Sender", Subcode: "a:ActionNotSupported", WSManCode: CodeActionNotSupported, Addressing: true,
		Reason:  "The WS-Management service does not support the action specified in the request. ",
		Message: "The WS-Management service does not support the action specified in the request. "}
	// faultShuttingDown is what a stopping WinRM service answers (the lab is closing).
	faultShuttingDown = Fault{Code: "s:Receiver", Subcode: "w:InternalError", WSManCode: 2147943515, // 0x8007045B ERROR_SHUTDOWN_IN_PROGRESS
		Reason: "A system shutdown is in progress. ", Message: "A system shutdown is in progress. "}
	faultSchema = Fault{Code: "s:Sender", Subcode: "w:SchemaValidationError", WSManCode: CodeSchemaValidation,
		Reason:  "The SOAP XML in the message does not match the corresponding XML schema definition. Change the XML and retry. ",
		Message: "The Windows Remote Shell cannot process the request; the SOAP packet contains an element that is not recognized. "}
)

func faultInvalidTimeout(value string) Fault {
	return Fault{Code: "s:Sender", Subcode: "a:InvalidMessageInformationHeader", WSManCode: CodeInvalidHeader, Addressing: true,
		Reason:  "The WS-Management service cannot process the request. The request contains one or more invalid SOAP headers. ",
		Message: "The WS-Management service cannot process the request. The XML contains an invalid timeout field in the SOAP header: " + value + ". "}
}

// render writes the fault envelope; machine is the host name Windows puts in Machine="".
func (f Fault) render(relatesTo, machine string) []byte {
	var b strings.Builder
	b.WriteString(openFault)
	action := "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault"
	if f.Addressing {
		action = "http://schemas.xmlsoap.org/ws/2004/08/addressing/fault"
	}
	if f.WMIError {
		relatesTo = "" // the captured QuotaLimit fault carries no RelatesTo
	}
	header(&b, action, relatesTo)
	lang := "en-US"
	if f.ReasonLang == "-" {
		lang = ""
	}
	fmt.Fprintf(&b, `<s:Body><s:Fault><s:Code><s:Value>%s</s:Value><s:Subcode><s:Value>%s</s:Value></s:Subcode></s:Code>`+
		`<s:Reason><s:Text xml:lang="%s">%s</s:Text></s:Reason><s:Detail>`, f.Code, f.Subcode, lang, xmlText(f.Reason))
	if f.Detail != "" {
		b.WriteString(`<w:FaultDetail>` + f.Detail + `</w:FaultDetail>`)
	}
	switch {
	case f.WMIError:
		msg := xmlText(f.Message)
		fmt.Fprintf(&b, `<p:MSFT_WmiError b:IsCIM_Error="true" xmlns:b="http://schemas.dmtf.org/wbem/wsman/1/cimbinding.xsd" xmlns:cim="http://schemas.dmtf.org/wbem/wscim/1/common" xmlns:p="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/MSFT_WmiError" xsi:type="p:MSFT_WmiError_Type" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">`+
			`<p:CIMStatusCode xsi:type="cim:cimUnsignedInt">27</p:CIMStatusCode><p:CIMStatusCodeDescription xsi:nil="true" xsi:type="cim:cimString"/>`+
			`<p:ErrorSource xsi:nil="true" xsi:type="cim:cimString"/><p:ErrorSourceFormat xsi:type="cim:cimUnsignedShort">0</p:ErrorSourceFormat>`+
			`<p:ErrorType xsi:type="cim:cimUnsignedShort">0</p:ErrorType><p:Message xsi:type="cim:cimString">%s</p:Message>`+
			`<p:MessageID xsi:type="cim:cimString">HRESULT 0x%x</p:MessageID><p:OtherErrorSourceFormat xsi:nil="true" xsi:type="cim:cimString"/>`+
			`<p:OtherErrorType xsi:nil="true" xsi:type="cim:cimString"/><p:OwningEntity xsi:nil="true" xsi:type="cim:cimString"/>`+
			`<p:PerceivedSeverity xsi:type="cim:cimUnsignedShort">0</p:PerceivedSeverity><p:ProbableCause xsi:type="cim:cimUnsignedShort">0</p:ProbableCause>`+
			`<p:ProbableCauseDescription xsi:nil="true" xsi:type="cim:cimString"/><p:error_Category xsi:type="cim:cimUnsignedInt">30</p:error_Category>`+
			`<p:error_Code xsi:type="cim:cimUnsignedInt">%d</p:error_Code><p:error_Type xsi:type="cim:cimString">HRESULT</p:error_Type>`+
			`<p:error_WindowsErrorMessage xsi:type="cim:cimString">%s</p:error_WindowsErrorMessage></p:MSFT_WmiError>`,
			msg, f.WSManCode, f.WSManCode, msg)
	case f.Provider != "" && f.Nested:
		fmt.Fprintf(&b, `<f:WSManFault xmlns:f="%s" Code="%d" Machine="%s"><f:Message><f:ProviderFault provider="%s" path="%s">`+
			`<f:WSManFault xmlns:f="%s" Code="%d" Machine="%s"><f:Message>%s</f:Message></f:WSManFault></f:ProviderFault></f:Message></f:WSManFault>`,
			nsFault, f.WSManCode, xmlText(machine), f.Provider, xmlText(f.ProvPath), nsFault, f.WSManCode, xmlText(machine), xmlText(f.Message))
	case f.Provider != "":
		fmt.Fprintf(&b, `<f:WSManFault xmlns:f="%s" Code="%d" Machine="%s"><f:Message><f:ProviderFault provider="%s" path="%s">%s</f:ProviderFault></f:Message></f:WSManFault>`,
			nsFault, f.WSManCode, xmlText(machine), f.Provider, xmlText(f.ProvPath), xmlText(f.Message))
	default:
		fmt.Fprintf(&b, `<f:WSManFault xmlns:f="%s" Code="%d" Machine="%s"><f:Message>%s</f:Message></f:WSManFault>`,
			nsFault, f.WSManCode, xmlText(machine), xmlText(f.Message))
	}
	b.WriteString(`</s:Detail></s:Fault></s:Body>`)
	b.WriteString(closeEnv)
	return []byte(b.String())
}

func (f Fault) status() int {
	if f.Status != 0 {
		return f.Status
	}
	return http.StatusInternalServerError
}

func writeBase64(b *strings.Builder, data []byte) {
	enc := base64.NewEncoder(base64.StdEncoding, b)
	enc.Write(data)
	enc.Close()
}

// invalidHostnameBody is what HTTP.sys answers (400) for a Host it does not serve.
const invalidHostnameBody = `<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01//EN""http://www.w3.org/TR/html4/strict.dtd">
<HTML><HEAD><TITLE>Bad Request</TITLE>
<META HTTP-EQUIV="Content-Type" Content="text/html; charset=us-ascii"></HEAD>
<BODY><h2>Bad Request - Invalid Hostname</h2>
<hr><p>HTTP Error 400. The request hostname is invalid.</p>
</BODY></HTML>
`
