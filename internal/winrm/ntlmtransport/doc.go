// Package ntlmtransport is a masterzen/winrm Transporter for WinRM with NTLM
// authentication and, over http, NTLM message encryption (MS-WSMV 2.2.9.1.1),
// which Windows requires on its default listener (AllowUnencrypted=false).
//
// One Transport serves one host. It keeps one keep-alive connection and one
// NTLM security context bound to it: the context is established once per
// connection, its sequence numbers run across messages, and a new connection
// (idle, closed by the server, 401) gets a new context. Requests are
// serialised on that connection.
//
// It never falls back to plaintext: on a sealed session an unencrypted answer
// is an error. Every response is size-bounded and parsed with every length
// checked.
//
// masterzen's Transporter.Post has no context. Bind one per poll with
// WithContext; Options.Timeout bounds each round trip, and requests issued
// after the context is done (masterzen's Signal and Delete Shell after a
// cancellation) get one shared CleanupTimeout budget.
//
// Use with masterzen/winrm:
//
//	tr, err := ntlmtransport.New(ntlmtransport.Options{Username: `CORP\svc`, Password: pw, Timeout: 90 * time.Second})
//	params := winrm.NewParameters("PT60S", "en-US", 153600)
//	params.TransportDecorator = func() winrm.Transporter { return tr.WithContext(ctx) }
//	client, err := winrm.NewClientWithParameters(&winrm.Endpoint{Host: host, Port: 5985}, "", "", params)
package ntlmtransport
