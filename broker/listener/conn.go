package listener

import (
	"crypto/tls"
	"net"
)

// ConnInfo describes an accepted connection.
type ConnInfo struct {
	// Listener is the name of the listener that accepted the connection.
	Listener string
	// Transport is tcp, tls, ws or wss.
	Transport string
	// RemoteAddr is the client's address: the one in the PROXY header
	// when the listener reads one, else the socket's peer.
	RemoteAddr net.Addr
	// Proxied reports whether RemoteAddr came from a PROXY header.
	Proxied bool
	// TLS summarises the TLS session; nil for tcp and ws.
	TLS *TLSInfo
	// CertIdentity is the verified client certificate's common name or
	// first DNS/email SAN (per Config.IdentityFromCert); empty when the
	// listener does not extract one or the client sent no certificate.
	CertIdentity string
	// Subprotocol is the negotiated WebSocket subprotocol (mqtt or
	// mqttv3.1); empty for tcp and tls.
	Subprotocol string
}

// TLSInfo summarises a TLS session for logs and authentication.
type TLSInfo struct {
	// Version is the protocol version, e.g. "TLS 1.3".
	Version string
	// CipherSuite is the negotiated cipher suite's name.
	CipherSuite string
	// ServerName is the SNI the client asked for, if any.
	ServerName string
	// ClientCertSubject is the verified client certificate's subject
	// distinguished name; empty without one.
	ClientCertSubject string
}

// conn is an accepted connection: the byte stream (socket, TLS or
// WebSocket) and what was learnt while setting it up.
type conn struct {
	net.Conn
	info ConnInfo
	tcp  *net.TCPConn // the socket, when the stream is its raw bytes
}

// RemoteAddr returns the client's address (see ConnInfo.RemoteAddr).
func (c *conn) RemoteAddr() net.Addr { return c.info.RemoteAddr }

// NetConn returns the connection's byte stream without the wrapper.
func (c *conn) NetConn() net.Conn { return c.Conn }

// Info returns what the listener learnt about c. For a connection it did
// not accept, it returns the socket's view: RemoteAddr and, for a
// *tls.Conn, the TLS summary.
func Info(c net.Conn) ConnInfo {
	if lc, ok := c.(*conn); ok {
		return lc.info
	}
	info := ConnInfo{RemoteAddr: c.RemoteAddr(), Transport: TCP}
	if tc, ok := c.(*tls.Conn); ok {
		st := tc.ConnectionState()
		info.Transport = TLS
		info.TLS = summarizeTLS(&st)
	}
	return info
}

// TCPConn returns the socket under c when c's byte stream is the socket's
// own (a tcp listener, with or without PROXY: nothing is buffered in user
// space). The broker may then wait for readability on the file descriptor
// (epoll parking). It reports false for TLS and WebSocket connections,
// whose readers buffer and decode: they need a goroutine blocked in Read.
func TCPConn(c net.Conn) (*net.TCPConn, bool) {
	switch c := c.(type) {
	case *conn:
		return c.tcp, c.tcp != nil
	case *net.TCPConn:
		return c, true
	}
	return nil, false
}

// summarizeTLS builds the TLSInfo of a finished handshake.
func summarizeTLS(st *tls.ConnectionState) *TLSInfo {
	ti := &TLSInfo{
		Version:     tls.VersionName(st.Version),
		CipherSuite: tls.CipherSuiteName(st.CipherSuite),
		ServerName:  st.ServerName,
	}
	if len(st.VerifiedChains) > 0 {
		ti.ClientCertSubject = st.PeerCertificates[0].Subject.String()
	}
	return ti
}

// certIdentity extracts the identity of a verified client certificate.
func certIdentity(source string, st *tls.ConnectionState) string {
	if len(st.VerifiedChains) == 0 || len(st.PeerCertificates) == 0 {
		return ""
	}
	leaf := st.PeerCertificates[0]
	switch source {
	case IdentityCN:
		return leaf.Subject.CommonName
	case IdentitySAN:
		if len(leaf.DNSNames) > 0 {
			return leaf.DNSNames[0]
		}
		if len(leaf.EmailAddresses) > 0 {
			return leaf.EmailAddresses[0]
		}
	}
	return ""
}
