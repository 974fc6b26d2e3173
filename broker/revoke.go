package broker

import (
	"github.com/sluicehq/sluice/broker/auth"
	"github.com/sluicehq/sluice/broker/topic"
)

// RevokeDenied removes the subscriptions the ACL in force no longer
// allows and returns how many went. Call it after the ACL changes (an
// auth reload): a subscription is authorised when it is made, so without
// this a client whose access was taken away would keep receiving. It
// checks connected sessions and offline ones whose identity is known; a
// session restored from the store is checked when it resumes.
func (s *Server) RevokeDenied() int {
	if s.auth == nil {
		return 0
	}
	type target struct {
		id    string
		ident auth.Identity
	}
	var targets []target
	s.sessions.each(func(ss *session) {
		ss.mu.Lock()
		known := ss.conn.Load() != nil || ss.ident != (auth.Identity{})
		id := ss.ident
		ss.mu.Unlock()
		if known {
			targets = append(targets, target{ss.id, id})
		}
	})
	n := 0
	for _, t := range targets {
		if k := s.revokeDenied(t.id, t.ident); k > 0 {
			n += k
			if ss := s.sessions.get(t.id); ss != nil {
				s.markDirty(ss)
			}
		}
	}
	return n
}

// revokeDenied removes the subscriptions of session id that ident may no
// longer make; the caller marks the session dirty. It also runs when a
// session resumes, before its CONNACK: a persistent session keeps
// subscriptions made under an earlier ACL, or by another user with the
// same client id. It takes only the subscription tree's lock.
func (s *Server) revokeDenied(id string, ident auth.Identity) int {
	if s.auth == nil {
		return 0
	}
	n := 0
	for _, sub := range s.subs.ClientSubs(id) {
		filter := sub.Filter
		if sub.Group != "" {
			filter = topic.SharePrefix + sub.Group + "/" + sub.Filter
		}
		if s.auth.CanSubscribe(ident, filter) {
			continue
		}
		if s.subs.Remove(id, sub.Group, sub.Filter) {
			n++
			s.stats.denied[deniedRevoked].Add(1)
			s.log.Info("subscription revoked by the ACL", "client", id, "user", ident.Username, "filter", filter)
		}
	}
	return n
}
