package store

import "github.com/sluicehq/sluice/broker"

// EncodeSession encodes a session the way Disk stores it: a compact binary
// record without the client id (the key) and without the queue (stored per
// message). Other SessionStore implementations (the store comparison in
// examples/bench/storebench) use it to write the same bytes.
func EncodeSession(s *broker.StoredSession) ([]byte, error) { return encodeSession(s) }

// DecodeSession decodes a record written by EncodeSession for client id.
func DecodeSession(id string, rec []byte) (broker.StoredSession, error) {
	return decodeSession(id, rec)
}
