//go:build !linux

package broker

import "time"

// idlePoller is Linux-only; elsewhere idle connections keep a goroutine.
type idlePoller struct{ s *Server }

func newIdlePoller(*Server) (*idlePoller, error) { return nil, nil }

func (ip *idlePoller) park(*conn, time.Time) bool { return false }
func (ip *idlePoller) wake(*conn)                 {}
func (ip *idlePoller) run()                       { ip.s.wg.Done() }
func (ip *idlePoller) stop()                      {}
func (ip *idlePoller) close()                     {}
