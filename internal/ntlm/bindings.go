package ntlm

import (
	"crypto"
	"crypto/md5"
	"crypto/x509"
	"encoding/binary"
)

// TLSServerEndPoint returns the RFC 5929 "tls-server-end-point" channel
// binding data for the server's certificate: the prefix and the certificate's
// hash, SHA-256 unless its signature uses SHA-384 or SHA-512.
func TLSServerEndPoint(cert *x509.Certificate) []byte {
	h := crypto.SHA256
	switch cert.SignatureAlgorithm {
	case x509.SHA384WithRSA, x509.ECDSAWithSHA384, x509.SHA384WithRSAPSS:
		h = crypto.SHA384
	case x509.SHA512WithRSA, x509.ECDSAWithSHA512, x509.SHA512WithRSAPSS:
		h = crypto.SHA512
	}
	d := h.New()
	d.Write(cert.Raw)
	return append([]byte("tls-server-end-point:"), d.Sum(nil)...)
}

// ChannelBindingHash is the MsvAvChannelBindings value for application data:
// MD5 of a gss_channel_bindings_struct with no addresses (MS-NLMP 3.1.5.1.2).
func ChannelBindingHash(applicationData []byte) []byte {
	// initiator addrtype, initiator address length, acceptor addrtype,
	// acceptor address length: all zero; then the application data.
	b := make([]byte, 16, 20+len(applicationData))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(applicationData)))
	b = append(b, applicationData...)
	sum := md5.Sum(b)
	return sum[:]
}
