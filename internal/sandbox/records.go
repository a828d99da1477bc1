package sandbox

import (
	"maps"
	"slices"
	"strings"
	"time"
)

// Record is one call the sandbox answered (or dropped). It never holds the
// Authorization header or a body.
type Record struct {
	Time          time.Time `json:"time"`
	RequestID     string    `json:"requestID"`
	BrandID       string    `json:"brandID,omitempty"` // as claimed, even when refused
	Endpoint      Endpoint  `json:"endpoint"`
	Method        string    `json:"method"`
	Path          string    `json:"path"`
	UploadID      string    `json:"uploadID,omitempty"`
	PartNumber    int       `json:"partNumber,omitempty"`
	UserPackageID string    `json:"userPackageID,omitempty"` // expand: the crowd package in its path
	Status        int       `json:"status"`                  // what was (or, for a lost response, would have been) sent
	Code          string    `json:"code,omitempty"`
	Duplicate     bool      `json:"duplicate,omitempty"` // an idempotent repeat: same part bytes, merge or expand again
	Fault         Fault     `json:"fault,omitempty"`
}

// Succeeded is true when the call was processed successfully, whether or not
// the answer reached the client (a lost response was processed).
func (r Record) Succeeded() bool {
	return r.Status >= 200 && r.Status < 300 && (r.Fault == "" || r.Fault == FaultLostResponse)
}

// Records returns a copy of every call so far, oldest first.
func (s *Server) Records() []Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Record(nil), s.records...)
}

// CountSucceeded counts the calls to e that were processed successfully,
// duplicates included.
func (s *Server) CountSucceeded(e Endpoint) int {
	n := 0
	for _, r := range s.Records() {
		if r.Endpoint == e && r.Succeeded() {
			n++
		}
	}
	return n
}

// CountSucceededExpands counts the expands of package userPackageID with
// uploadID that were processed successfully, idempotent repeats included:
// with the default strict sandbox more than one cannot happen, so a test
// that wants exactly one successful expand can count here.
func (s *Server) CountSucceededExpands(userPackageID, uploadID string) int {
	n := 0
	for _, r := range s.Records() {
		if r.Endpoint == EndpointExpand && r.UserPackageID == userPackageID && r.UploadID == uploadID && r.Succeeded() {
			n++
		}
	}
	return n
}

// MergedFile returns the reassembled bytes of a merged upload.
func (s *Server) MergedFile(uploadID string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.uploads[uploadID]
	if !ok || !u.merged {
		return nil, false
	}
	return u.assemble(), true
}

// Session is one upload session as the sandbox holds it: what initiate
// was told, and whether it was merged.
type Session struct {
	ID       string `json:"id"`
	Filename string `json:"filename"`
	// Digest is the hex SHA-256 initiate was given for the file.
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
	Merged bool   `json:"merged"`
}

// Sessions returns every upload session initiated so far, sorted by id,
// so that a test can tell each from the objects that started it (and
// count the sessions no object knows of).
func (s *Server) Sessions() []Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Session, 0, len(s.uploads))
	for _, u := range s.uploads {
		out = append(out, Session{ID: u.id, Filename: u.filename, Digest: u.digest, Size: u.size, Merged: u.merged})
	}
	slices.SortFunc(out, func(a, b Session) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// PackageMembers returns the members a crowd package was expanded with,
// sorted: the union of the lines of every upload expanded into it.
func (s *Server) PackageMembers(userPackageID string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.packages[userPackageID]))
}

// MostExpandsAtOnce returns the most expands of the crowd package the
// sandbox handled at the same time, from arrival (latency included) to answer.
func (s *Server) MostExpandsAtOnce(userPackageID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mostAtOnce[userPackageID]
}

// enter counts a call to e in flight, so that expands of one package at
// once are seen; the func it returns ends the call.
func (s *Server) enter(e Endpoint, userPackageID string) (leave func()) {
	if e != EndpointExpand {
		return func() {}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expanding[userPackageID]++
	s.mostAtOnce[userPackageID] = max(s.mostAtOnce[userPackageID], s.expanding[userPackageID])
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.expanding[userPackageID]--
	}
}

// appendRecord adds r to the calls Records returns.
func (s *Server) appendRecord(r Record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records = append(s.records, r)
}
