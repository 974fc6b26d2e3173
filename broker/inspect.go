package broker

// This file is the broker's read-only introspection and the few controls
// the admin API needs: client details, administrative disconnect, sessions
// (online and offline), subscriptions and retained messages. Listings are
// sorted by client id (retained: by topic) and paged with an exclusive
// "after" key, so a caller walks a large broker in bounded pages.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sluicehq/sluice/broker/packet"
	"github.com/sluicehq/sluice/broker/topic"
)

// ErrNoSession is returned for a client id without a session.
var ErrNoSession = errors.New("no such session")

// ErrOnline is returned by DeleteSession for a session whose client is
// connected (disconnect it first).
var ErrOnline = errors.New("client is connected")

// ClientDetails describes one connected client.
type ClientDetails struct {
	ClientInfo
	// ConnID is the connection's id, as logged under conn_id.
	ConnID uint64
	// ConnectedAt is when its CONNECT was accepted.
	ConnectedAt time.Time
	// KeepAlive is the keep alive in force (after the server's cap); 0: none.
	KeepAlive time.Duration
	// CleanStart is the CONNECT's clean start (3.1.1: clean session) flag.
	CleanStart bool
	// Session is the client's session state.
	Session SessionInfo
	// Subscriptions are the session's subscriptions, sorted by filter.
	Subscriptions []Subscription
}

// SessionInfo describes one session, online or not.
type SessionInfo struct {
	// ClientID identifies the session.
	ClientID string
	// Online reports whether a client is connected to it.
	Online bool
	// ConnID is the connected client's connection id; 0 when offline.
	ConnID uint64
	// Expiry is the session expiry interval in seconds; 0xFFFFFFFF: never.
	Expiry uint32
	// OfflineSince is when its client left; zero while online.
	OfflineSince time.Time
	// ExpiresAt is when an offline session ends; zero while online or
	// when it never expires.
	ExpiresAt time.Time
	// Inflight counts outbound QoS 1/2 messages sent and not completed.
	Inflight int
	// Queued counts outbound QoS 1/2 messages waiting (offline or beyond
	// the inflight window); QueuedBytes is their payload size.
	Queued, QueuedBytes int
	// Subscriptions counts the session's subscriptions.
	Subscriptions int
	// PendingWill reports a delayed will waiting to be published.
	PendingWill bool
}

// Subscription is one subscription of a session.
type Subscription struct {
	// ClientID is the subscribing session.
	ClientID string
	// Filter is the topic filter as subscribed, with the
	// $share/{group}/ prefix of a shared subscription.
	Filter string
	// Group is the shared subscription group; "" when not shared.
	Group string
	// QoS is the maximum QoS granted.
	QoS byte
	// NoLocal, RetainAsPublished and RetainHandling are the v5 options.
	NoLocal           bool
	RetainAsPublished bool
	RetainHandling    byte
	// ID is the v5 subscription identifier; 0: none.
	ID uint32
}

// Ready reports whether the broker serves clients: every listener bound,
// Serve running and not shutting down.
func (s *Server) Ready() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case len(s.listeners) == 0:
		return errors.New("broker: listeners not bound")
	case !s.serving:
		return errors.New("broker: not serving yet")
	case s.draining.Load():
		return errors.New("broker: shutting down")
	}
	return nil
}

// Client returns the details of the connected client clientID.
func (s *Server) Client(clientID string) (ClientDetails, bool) {
	ss := s.sessions.get(clientID)
	if ss == nil {
		return ClientDetails{}, false
	}
	c := ss.conn.Load()
	if c == nil {
		return ClientDetails{}, false
	}
	return s.clientDetails(ss, c), true
}

// clientDetails reads c's CONNECT fields, which are set before c is
// published in ss.conn and never change afterwards.
func (s *Server) clientDetails(ss *session, c *conn) ClientDetails {
	d := ClientDetails{
		ClientInfo: ClientInfo{ClientID: c.clientID, Username: c.username, Version: c.version,
			Listener: c.lis.cfg.Name, RemoteAddr: c.remoteAddr()},
		ConnID: c.id, ConnectedAt: c.connectedAt, KeepAlive: c.keepAlive, CleanStart: c.cleanStart,
		Session: s.sessionInfo(ss),
	}
	d.Subscriptions = s.Subscriptions(c.clientID)
	return d
}

// ClientPage lists up to limit connected clients whose ids sort after
// after, in client id order; more reports whether further clients follow.
func (s *Server) ClientPage(after string, limit int) (page []ClientDetails, more bool) {
	ids := s.sessionIDs(true)
	ids, more = pageAfter(ids, after, limit)
	page = make([]ClientDetails, 0, len(ids))
	for _, id := range ids {
		if d, ok := s.Client(id); ok {
			page = append(page, d)
		}
	}
	return page, more
}

// Disconnect closes the connection of clientID as an administrative
// action (v5 clients get DISCONNECT 0x98 first; the will is published as
// for any server-side close) and waits until the connection has left its
// session or ctx ends. The session itself stays, subject to its expiry.
// It reports false when the client is not connected.
func (s *Server) Disconnect(ctx context.Context, clientID string) (bool, error) {
	ss := s.sessions.get(clientID)
	if ss == nil {
		return false, nil
	}
	c := ss.conn.Load()
	if c == nil {
		return false, nil
	}
	s.log.Info("disconnecting client: administrative action", "conn_id", c.id, "client_id", clientID)
	c.kick(packet.AdministrativeAction)
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for ss.conn.Load() == c {
		select {
		case <-ctx.Done():
			return true, fmt.Errorf("disconnecting %s: %w", clientID, ctx.Err())
		case <-t.C:
		}
	}
	return true, nil
}

// Session returns the session of clientID, online or not.
func (s *Server) Session(clientID string) (SessionInfo, bool) {
	ss := s.sessions.get(clientID)
	if ss == nil {
		return SessionInfo{}, false
	}
	info := s.sessionInfo(ss)
	return info, true
}

// sessionInfo snapshots ss under its lock.
func (s *Server) sessionInfo(ss *session) SessionInfo {
	ss.mu.Lock()
	info := SessionInfo{
		ClientID: ss.id, Expiry: ss.expiry, OfflineSince: ss.offlineAt,
		Inflight: len(ss.inflight), Queued: ss.qlen(), QueuedBytes: ss.queuedBytes,
		PendingWill: ss.will != nil,
	}
	if c := ss.conn.Load(); c != nil {
		info.Online, info.ConnID = true, c.id
	}
	ss.mu.Unlock()
	if !info.Online && !info.OfflineSince.IsZero() && info.Expiry != expiryNever {
		info.ExpiresAt = info.OfflineSince.Add(time.Duration(info.Expiry) * time.Second)
	}
	info.Subscriptions = len(s.subs.ClientSubs(ss.id))
	return info
}

// SessionPage lists up to limit sessions, online and offline, whose
// client ids sort after after; more reports whether further ones follow.
func (s *Server) SessionPage(after string, limit int) (page []SessionInfo, more bool) {
	ids, more := pageAfter(s.sessionIDs(false), after, limit)
	page = make([]SessionInfo, 0, len(ids))
	for _, id := range ids {
		if info, ok := s.Session(id); ok {
			page = append(page, info)
		}
	}
	return page, more
}

// DeleteSession ends the offline session of clientID: its subscriptions
// and queued messages go, a pending delayed will is published. It returns
// ErrOnline while a client is connected and ErrNoSession when there is no
// session.
func (s *Server) DeleteSession(clientID string) error {
	sh := s.sessions.shard(clientID)
	sh.mu.Lock()
	ss := sh.m[clientID]
	if ss == nil {
		sh.mu.Unlock()
		return ErrNoSession
	}
	ss.mu.Lock()
	if ss.conn.Load() != nil {
		ss.mu.Unlock()
		sh.mu.Unlock()
		return ErrOnline
	}
	will := s.endSessionLocked(sh, ss)
	ss.mu.Unlock()
	sh.mu.Unlock()
	s.log.Info("session deleted: administrative action", "client_id", clientID)
	if will != nil {
		s.publishWill(will)
	}
	return nil
}

// Subscriptions returns the subscriptions of clientID sorted by filter
// (as subscribed, so shared ones first).
func (s *Server) Subscriptions(clientID string) []Subscription {
	subs := s.subs.ClientSubs(clientID)
	out := make([]Subscription, len(subs))
	for i, sub := range subs {
		out[i] = Subscription{ClientID: sub.ClientID, Filter: sub.Filter, Group: sub.Group, QoS: sub.QoS,
			NoLocal: sub.NoLocal, RetainAsPublished: sub.RetainAsPublished, RetainHandling: sub.RetainHandling, ID: sub.ID}
		if sub.Group != "" {
			out[i].Filter = "$share/" + sub.Group + "/" + sub.Filter
		}
	}
	slices.SortFunc(out, func(a, b Subscription) int { return strings.Compare(a.Filter, b.Filter) })
	return out
}

// SubscriptionPage lists the subscriptions of the sessions whose client
// ids sort after after, whole sessions at a time, until at least limit
// subscriptions are listed; more reports whether further sessions follow.
// The next page starts after the last subscription's client id.
func (s *Server) SubscriptionPage(after string, limit int) (page []Subscription, more bool) {
	ids := s.sessionIDs(false)
	i, _ := slices.BinarySearch(ids, after)
	if i < len(ids) && ids[i] == after {
		i++
	}
	limit = max(limit, 1)
	for ; i < len(ids) && len(page) < limit; i++ {
		page = append(page, s.Subscriptions(ids[i])...)
	}
	return page, i < len(ids)
}

// RetainedMessages returns up to limit retained messages whose topics
// match filter (an MQTT topic filter; "#" does not match "$" topics),
// sorted by topic; more reports whether further messages match. When more
// is set the page is the first limit found, in no particular order: narrow
// the filter to see the rest. The messages are shared with the broker:
// callers must not modify them.
func (s *Server) RetainedMessages(filter string, limit int) (msgs []*Message, more bool, err error) {
	if _, _, shared, _ := topic.ParseShared(filter); shared || !topic.ValidFilter([]byte(filter)) {
		return nil, false, fmt.Errorf("listing retained messages: invalid topic filter %q", filter)
	}
	limit = max(limit, 1)
	s.retained.Match(filter, func(_ string, m *Message) bool {
		if len(msgs) == limit {
			more = true
			return false
		}
		msgs = append(msgs, m)
		return true
	})
	slices.SortFunc(msgs, func(a, b *Message) int { return strings.Compare(a.Topic, b.Topic) })
	return msgs, more, nil
}

// sessionIDs returns the client ids of every session (onlineOnly: of
// connected clients), sorted.
func (s *Server) sessionIDs(onlineOnly bool) []string {
	var ids []string
	s.sessions.each(func(ss *session) {
		if !onlineOnly || ss.conn.Load() != nil {
			ids = append(ids, ss.id)
		}
	})
	slices.Sort(ids)
	return ids
}

// pageAfter returns up to limit ids of the sorted ids that sort after
// after, and whether more follow.
func pageAfter(ids []string, after string, limit int) ([]string, bool) {
	i, found := slices.BinarySearch(ids, after)
	if found {
		i++
	}
	ids = ids[i:]
	limit = max(limit, 1)
	if len(ids) > limit {
		return ids[:limit], true
	}
	return ids, false
}
