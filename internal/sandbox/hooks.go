package sandbox

import "net/http"

// Phase is a point in the handling of a call at which a hook runs.
type Phase string

const (
	// PhaseArrived: the call is authenticated and about to be processed.
	PhaseArrived Phase = "arrived"
	// PhaseAnswered: the call was processed and its answer flushed to the client.
	PhaseAnswered Phase = "answered"
)

// Hook is told of every authenticated call at each phase; rec is the call
// as recorded so far. At PhaseArrived, returning true drops the call: it
// is not processed, not recorded, and the connection closes unanswered, as
// if the request never reached WeChat Pay. Tests use it to crash a client
// at a chosen point of its work.
type Hook func(e Endpoint, rec Record, phase Phase) (drop bool)

// SetHook installs h (nil removes it).
func (s *Server) SetHook(h Hook) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hook = h
}

// runHook runs the hook, if any, outside the server's lock.
func (s *Server) runHook(e Endpoint, rec Record, phase Phase) bool {
	s.mu.Lock()
	h := s.hook
	s.mu.Unlock()
	return h != nil && h(e, rec, phase)
}

// faultDropped marks, inside the server, a call a hook dropped; it is never recorded.
const faultDropped Fault = "dropped"

// errDropped ends a call a hook dropped; the handler closes the connection.
var errDropped = http.ErrAbortHandler
