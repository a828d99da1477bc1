package sandbox

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
)

// Endpoint names one of the four API calls.
type Endpoint string

// The simulated endpoints.
const (
	EndpointInitiate   Endpoint = "initiate"
	EndpointUploadPart Endpoint = "upload_part"
	EndpointMerge      Endpoint = "merge"
	EndpointExpand     Endpoint = "expand"
)

func (e Endpoint) valid() bool {
	switch e {
	case EndpointInitiate, EndpointUploadPart, EndpointMerge, EndpointExpand:
		return true
	}
	return false
}

// Fault is one kind of injected failure.
type Fault string

// Injectable faults.
const (
	FaultSystemError  Fault = "system_error"  // 500 SYSTEM_ERROR, request not processed
	FaultUnavailable  Fault = "unavailable"   // 503 SERVICE_UNAVAILABLE, not processed
	FaultRateLimit    Fault = "rate_limit"    // 429 RATELIMIT_EXCEEDED with Retry-After, not processed
	FaultAccepted     Fault = "accepted"      // signed 202 with no body, not processed
	FaultLostResponse Fault = "lost_response" // processed fully, then the connection is dropped
)

func (f Fault) valid() bool {
	switch f {
	case FaultSystemError, FaultUnavailable, FaultRateLimit, FaultAccepted, FaultLostResponse:
		return true
	}
	return false
}

// Faults are random faults of one endpoint, in percent of authenticated calls.
type Faults struct {
	SystemErrorPercent  int `json:"systemErrorPercent,omitempty"`
	UnavailablePercent  int `json:"unavailablePercent,omitempty"`
	RateLimitPercent    int `json:"rateLimitPercent,omitempty"`
	LostResponsePercent int `json:"lostResponsePercent,omitempty"`
	// RetryAfterSeconds is sent with 429s; 0 sends no Retry-After.
	RetryAfterSeconds int `json:"retryAfterSeconds,omitempty"`
	// LatencyMillis delays every call to the endpoint.
	LatencyMillis int `json:"latencyMillis,omitempty"`
}

func (f Faults) validate() error {
	total := f.SystemErrorPercent + f.UnavailablePercent + f.RateLimitPercent + f.LostResponsePercent
	for _, v := range []int{f.SystemErrorPercent, f.UnavailablePercent, f.RateLimitPercent, f.LostResponsePercent, f.RetryAfterSeconds, f.LatencyMillis} {
		if v < 0 {
			return fmt.Errorf("fault settings must not be negative")
		}
	}
	if total > 100 {
		return fmt.Errorf("fault percentages add up to %d, more than 100", total)
	}
	return nil
}

// faultPlan holds the fault settings; guarded by Server.mu.
type faultPlan struct {
	rng      *rand.Rand
	random   map[Endpoint]Faults
	scripted map[Endpoint][]Fault
}

func newFaultPlan(seed uint64, random map[Endpoint]Faults) *faultPlan {
	p := &faultPlan{rng: rand.New(rand.NewPCG(seed, seed)), random: map[Endpoint]Faults{}, scripted: map[Endpoint][]Fault{}}
	for e, f := range random {
		p.random[e] = f
	}
	return p
}

// next picks the fault for one call: scripted faults first, then a roll.
func (p *faultPlan) next(e Endpoint) Fault {
	if queue := p.scripted[e]; len(queue) > 0 {
		p.scripted[e] = queue[1:]
		return queue[0]
	}
	f := p.random[e]
	roll := p.rng.IntN(100)
	for _, c := range []struct {
		percent int
		fault   Fault
	}{
		{f.SystemErrorPercent, FaultSystemError},
		{f.UnavailablePercent, FaultUnavailable},
		{f.RateLimitPercent, FaultRateLimit},
		{f.LostResponsePercent, FaultLostResponse},
	} {
		if roll < c.percent {
			return c.fault
		}
		roll -= c.percent
	}
	return ""
}

// SetFaults replaces the random faults of an endpoint at run time.
func (s *Server) SetFaults(e Endpoint, f Faults) error {
	if !e.valid() {
		return fmt.Errorf("unknown endpoint %q", e)
	}
	if err := f.validate(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.random[e] = f
	return nil
}

// FailNext makes the next n authenticated calls to e fail with f, before any
// random fault: the deterministic way to test a client's reaction.
func (s *Server) FailNext(e Endpoint, n int, f Fault) error {
	if !e.valid() {
		return fmt.Errorf("unknown endpoint %q", e)
	}
	if !f.valid() {
		return fmt.Errorf("unknown fault %q", f)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults.scripted[e] = append(s.faults.scripted[e], f)
	}
	return nil
}

// faultReply is the answer of a fault injected instead of processing.
func faultReply(f Fault, retryAfterSeconds int) reply {
	switch f {
	case FaultSystemError:
		return failure(http.StatusInternalServerError, "SYSTEM_ERROR", "injected system error, retry with the same parameters")
	case FaultUnavailable:
		return failure(http.StatusServiceUnavailable, "SERVICE_UNAVAILABLE", "injected unavailability, retry later")
	case FaultRateLimit:
		r := failure(http.StatusTooManyRequests, "RATELIMIT_EXCEEDED", "injected rate limit, back off")
		if retryAfterSeconds > 0 {
			r.header = http.Header{"Retry-After": {strconv.Itoa(retryAfterSeconds)}}
		}
		return r
	default: // FaultAccepted
		return reply{status: http.StatusAccepted}
	}
}
