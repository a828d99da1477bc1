package sandbox

import (
	"encoding/json"
	"net/http"
)

// AdminHandler serves the test-only admin endpoints. They have no
// authentication: never expose them beyond a test machine.
//
//	GET  /sandbox/records                   every call, JSON (no secrets are recorded)
//	GET  /sandbox/uploads/{id}/file         a merged upload's reassembled bytes
//	GET  /sandbox/faults                    the random fault settings per endpoint
//	PUT  /sandbox/faults/{endpoint}         replace them, body: Faults JSON
//	POST /sandbox/faults/{endpoint}/next    body {"count":N,"fault":"lost_response"}
//	GET  /sandbox/idempotency               which repeats are answered 200, JSON Idempotency
//	PUT  /sandbox/idempotency               replace it, body {"merge":true,"expand":false}
func (s *Server) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	s.registerAdmin(mux)
	return mux
}

// HandlerWithAdmin serves the API and the admin endpoints on one listener.
func (s *Server) HandlerWithAdmin() http.Handler {
	mux := http.NewServeMux()
	s.registerAPI(mux)
	s.registerAdmin(mux)
	return withRequestID(mux)
}

func (s *Server) registerAdmin(mux *http.ServeMux) {
	mux.HandleFunc("GET /sandbox/records", s.adminRecords)
	mux.HandleFunc("GET /sandbox/uploads/{id}/file", s.adminMergedFile)
	mux.HandleFunc("GET /sandbox/faults", s.adminFaults)
	mux.HandleFunc("PUT /sandbox/faults/{endpoint}", s.adminSetFaults)
	mux.HandleFunc("POST /sandbox/faults/{endpoint}/next", s.adminFailNext)
	mux.HandleFunc("GET /sandbox/idempotency", s.adminIdempotency)
	mux.HandleFunc("PUT /sandbox/idempotency", s.adminSetIdempotency)
}

func (s *Server) adminRecords(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Records())
}

func (s *Server) adminMergedFile(w http.ResponseWriter, r *http.Request) {
	data, ok := s.MergedFile(r.PathValue("id"))
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "no merged upload with this id"})
		return
	}
	w.Header().Set("Content-Type", "text/csv")
	_, _ = w.Write(data)
}

func (s *Server) adminFaults(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	faults := map[Endpoint]Faults{}
	for e, f := range s.faults.random {
		faults[e] = f
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, faults)
}

func (s *Server) adminSetFaults(w http.ResponseWriter, r *http.Request) {
	var f Faults
	if !decodeAdmin(w, r, &f) {
		return
	}
	answerAdmin(w, s.SetFaults(Endpoint(r.PathValue("endpoint")), f))
}

func (s *Server) adminFailNext(w http.ResponseWriter, r *http.Request) {
	var next struct {
		Count int   `json:"count"`
		Fault Fault `json:"fault"`
	}
	if !decodeAdmin(w, r, &next) {
		return
	}
	answerAdmin(w, s.FailNext(Endpoint(r.PathValue("endpoint")), next.Count, next.Fault))
}

func (s *Server) adminIdempotency(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Idempotency())
}

func (s *Server) adminSetIdempotency(w http.ResponseWriter, r *http.Request) {
	var i Idempotency
	if !decodeAdmin(w, r, &i) {
		return
	}
	s.SetIdempotency(i)
	answerAdmin(w, nil)
}

func decodeAdmin(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxJSONBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": "bad JSON: " + err.Error()})
		return false
	}
	return true
}

func answerAdmin(w http.ResponseWriter, err error) {
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": err.Error()})
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
