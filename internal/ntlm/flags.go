package ntlm

import (
	"fmt"
	"strings"
)

// Flags is the NegotiateFlags field of the NTLM messages (MS-NLMP 2.2.2.5).
type Flags uint32

// Negotiate flags used by this package.
const (
	FlagUnicode                 Flags = 0x00000001
	FlagOEM                     Flags = 0x00000002
	FlagRequestTarget           Flags = 0x00000004
	FlagSign                    Flags = 0x00000010
	FlagSeal                    Flags = 0x00000020
	FlagDatagram                Flags = 0x00000040
	FlagLMKey                   Flags = 0x00000080
	FlagNTLM                    Flags = 0x00000200
	FlagAnonymous               Flags = 0x00000800
	FlagOEMDomainSupplied       Flags = 0x00001000
	FlagOEMWorkstationSupplied  Flags = 0x00002000
	FlagAlwaysSign              Flags = 0x00008000
	FlagTargetTypeDomain        Flags = 0x00010000
	FlagTargetTypeServer        Flags = 0x00020000
	FlagExtendedSessionSecurity Flags = 0x00080000
	FlagIdentify                Flags = 0x00100000
	FlagRequestNonNTSessionKey  Flags = 0x00400000
	FlagTargetInfo              Flags = 0x00800000
	FlagVersion                 Flags = 0x02000000
	Flag128                     Flags = 0x20000000
	FlagKeyExch                 Flags = 0x40000000
	Flag56                      Flags = 0x80000000
)

// DefaultFlags are the flags a Client offers in its NEGOTIATE message:
// NTLMv2 with extended session security, 128-bit keys, key exchange, sign and seal.
const DefaultFlags = FlagUnicode | FlagRequestTarget | FlagSign | FlagSeal | FlagNTLM |
	FlagAlwaysSign | FlagExtendedSessionSecurity | FlagTargetInfo | FlagVersion |
	Flag128 | FlagKeyExch | Flag56

var flagNames = []struct {
	f    Flags
	name string
}{
	{Flag56, "56"}, {FlagKeyExch, "KEY_EXCH"}, {Flag128, "128"}, {FlagVersion, "VERSION"},
	{FlagTargetInfo, "TARGET_INFO"}, {FlagRequestNonNTSessionKey, "REQUEST_NON_NT_SESSION_KEY"},
	{FlagIdentify, "IDENTIFY"}, {FlagExtendedSessionSecurity, "EXTENDED_SESSIONSECURITY"},
	{FlagTargetTypeServer, "TARGET_TYPE_SERVER"}, {FlagTargetTypeDomain, "TARGET_TYPE_DOMAIN"},
	{FlagAlwaysSign, "ALWAYS_SIGN"}, {FlagOEMWorkstationSupplied, "OEM_WORKSTATION_SUPPLIED"},
	{FlagOEMDomainSupplied, "OEM_DOMAIN_SUPPLIED"}, {FlagAnonymous, "ANONYMOUS"}, {FlagNTLM, "NTLM"},
	{FlagLMKey, "LM_KEY"}, {FlagDatagram, "DATAGRAM"}, {FlagSeal, "SEAL"}, {FlagSign, "SIGN"},
	{FlagRequestTarget, "REQUEST_TARGET"}, {FlagOEM, "OEM"}, {FlagUnicode, "UNICODE"},
}

// Has reports whether every flag in want is set.
func (f Flags) Has(want Flags) bool { return f&want == want }

// String lists the flag names joined by '|', most significant first.
func (f Flags) String() string {
	var names []string
	rest := f
	for _, n := range flagNames {
		if f&n.f != 0 {
			names = append(names, n.name)
			rest &^= n.f
		}
	}
	if rest != 0 {
		names = append(names, fmt.Sprintf("0x%08x", uint32(rest)))
	}
	if len(names) == 0 {
		return "0"
	}
	return strings.Join(names, "|")
}
