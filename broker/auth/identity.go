package auth

import (
	"errors"

	"github.com/sluicehq/sluice/broker/packet"
)

// Errors returned by Authenticate (wrapped; test with errors.Is). Map them
// to a CONNACK reason code with ConnackCode.
var (
	// ErrBadCredentials: unknown user, wrong password, a password without
	// a user name, or no user name where anonymous access is not allowed.
	ErrBadCredentials = errors.New("bad user name or password")
	// ErrRateLimited: too many recent failed logins from the source
	// address; the password was not checked.
	ErrRateLimited = errors.New("too many failed logins from this address")
)

// Credentials is what a client presents in CONNECT, plus what its
// transport knows about it.
type Credentials struct {
	// ClientID is the client identifier, as assigned by the broker when
	// the client sent an empty one.
	ClientID string
	// Username is the CONNECT user name; "" when absent.
	Username string
	// Password is the CONNECT password; nil when absent.
	Password []byte
	// RemoteAddr is the client's "host:port" (or bare host), after PROXY
	// protocol if the listener uses it. Failed logins are limited per
	// host (per /64 for IPv6).
	RemoteAddr string
	// ListenerAllowsAnonymous is the listener's allow_anonymous setting.
	ListenerAllowsAnonymous bool
	// CertIdentity is the name (CN or SAN) of a verified client
	// certificate, set by the transport only when its listener is
	// configured to use it as the user name; "" otherwise. When set, it is
	// the identity's user name and the CONNECT user name and password are
	// not used.
	CertIdentity string
}

// Method says how an Identity was established.
type Method uint8

// The ways an Identity is established.
const (
	// MethodAnonymous: no user name was presented (or the listener allows
	// anonymous access and no users are configured).
	MethodAnonymous Method = iota
	// MethodPassword: user name and password checked against a hash.
	MethodPassword
	// MethodCertificate: the name of a verified client certificate.
	MethodCertificate
)

// String returns the method's name as used in metric labels.
func (m Method) String() string {
	switch m {
	case MethodAnonymous:
		return "anonymous"
	case MethodPassword:
		return "password"
	case MethodCertificate:
		return "certificate"
	}
	return "unknown"
}

// Identity is an authenticated client, as passed to the Authorizer. The
// broker keeps the one Authenticate returned for the life of the
// connection.
type Identity struct {
	// ClientID is the client identifier.
	ClientID string
	// Username is the verified user name: "" for an anonymous client, even
	// if it sent a user name that was not checked. ACL rules see only this.
	Username string
	// Method says how the identity was established.
	Method Method
}

// ConnackCode returns the MQTT 5 CONNACK reason code for an Authenticate
// error: 0x86 Bad User Name or Password, 0x9F Connection Rate Exceeded
// for ErrRateLimited, 0x88 Server Unavailable for anything else (such as
// a cancelled context). packet.V3ConnackCode maps these to 3.1.1's 4, 3
// and 3.
func ConnackCode(err error) packet.ReasonCode {
	switch {
	case errors.Is(err, ErrBadCredentials):
		return packet.BadUserNameOrPassword
	case errors.Is(err, ErrRateLimited):
		return packet.ConnectionRateExceeded
	}
	return packet.ServerUnavailable
}
