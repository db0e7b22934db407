// Package ntlm is an NTLMv2 client security context (MS-NLMP): it builds the
// NEGOTIATE and AUTHENTICATE messages, parses the server's CHALLENGE strictly,
// and provides the session security (sign and seal, MS-NLMP 3.4) that WinRM
// message encryption over HTTP needs.
//
// Only NTLMv2 with extended session security is supported; NTLMv1 and LM are
// refused. A Client is one security context: it is used for one handshake and
// its Session for the life of one authenticated connection.
package ntlm
